//! The integration tests' synthetic LL-HLS server as a program, for
//! measuring the harness itself: tiny parts, so the load is requests, not
//! bytes. Prints `http://ADDR/master.m3u8` and serves until killed.

#[path = "../tests/support/mod.rs"]
mod support;

fn main() {
    let addr = support::start();
    println!("http://{addr}/master.m3u8");
    loop {
        std::thread::park();
    }
}
