//! livecdn edge: cache with streaming single-flight, h1/h2/h3 listeners (issue 3; listeners not built yet).

pub mod cache;
