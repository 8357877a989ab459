//! livecdn origin.
