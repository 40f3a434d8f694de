//! Links the system libsrtp2, found with pkg-config.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if let Err(e) = pkg_config::Config::new()
        .atleast_version("2.0")
        .probe("libsrtp2")
    {
        panic!(
            "\n\nlibsrtp2-ffi needs the system libsrtp2 (2.x) and its pkg-config file \
             `libsrtp2.pc`.\nOn Debian or Ubuntu: apt-get install libsrtp2-dev pkg-config\n\
             pkg-config said: {e}\n"
        );
    }
}
