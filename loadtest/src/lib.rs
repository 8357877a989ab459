//! livecdn load-test harness: virtual LL-HLS players and RTMP publishers (issue 4; not built yet).
