//! WasmEdge's socket ABI beyond what hyper_wasi uses: plain `fd_write`/`fd_read` on a socket
//! descriptor, and UDP datagrams with addresses (`sock_send_to`, `sock_recv_from`) under
//! `allowed_outbound_hosts`.
//!
//! The guest is a small hand-written module (the imports are exactly those the
//! `wasmedge_wasi_socket` crate declares), so each call's effect is visible: it prints what it
//! got to stdout, which Wasmgate logs with the component's name.

mod support;

use std::net::{TcpListener, UdpSocket};
use std::time::Duration;
use support::Server;

/// A module that (1) connects to 127.0.0.1:`tcp`, writes `hello` with `fd_write` and prints
/// what `fd_read` returns; (2) sends `hello` by UDP to 127.0.0.1:`udp_allowed` and to
/// 127.0.0.1:`udp_denied`, printing `udp A B` with each call's errno as a digit; (3) prints the
/// next datagram `sock_recv_from` delivers.
fn guest(tcp: u16, udp_allowed: u16, udp_denied: u16) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
        (import "wasi_snapshot_preview1" "sock_open"
            (func $sock_open (param i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "sock_connect"
            (func $sock_connect (param i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "sock_send_to"
            (func $sock_send_to (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "sock_recv_from"
            (func $sock_recv_from (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "fd_write"
            (func $fd_write (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "fd_read"
            (func $fd_read (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 0) "\64\00\00\00\05\00\00\00")   ;; iovec: "hello" at 100
        (data (i32.const 8) "\c8\00\00\00\04\00\00\00")   ;; address {{200, 4}}
        (data (i32.const 24) "\2c\01\00\00\40\00\00\00")  ;; iovec: 64 bytes at 300
        (data (i32.const 56) "\f4\01\00\00\40\00\00\00")  ;; iovec: 64 bytes at 500
        (data (i32.const 64) "\58\02\00\00\80\00\00\00")  ;; address buffer {{600, 128}}
        (data (i32.const 100) "hello")
        (data (i32.const 200) "\7f\00\00\01")
        (data (i32.const 400) "udp X Y\n")
        (func $print (param $ptr i32) (param $len i32)
            (i32.store (i32.const 32) (local.get $ptr))
            (i32.store (i32.const 36) (local.get $len))
            (drop (call $fd_write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 20))))
        (func $send_to (param $fd i32) (param $port i32) (result i32)
            (i32.add (i32.const 48)
                (call $sock_send_to (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)
                    (local.get $port) (i32.const 0) (i32.const 20))))
        (func (export "_start")
            (local $fd i32)
            (drop (call $sock_open (i32.const 1) (i32.const 2) (i32.const 16)))
            (local.set $fd (i32.load (i32.const 16)))
            (drop (call $sock_connect (local.get $fd) (i32.const 8) (i32.const {tcp})))
            (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 20)))
            (drop (call $fd_read (local.get $fd) (i32.const 24) (i32.const 1) (i32.const 20)))
            (call $print (i32.const 300) (i32.load (i32.const 20)))

            (drop (call $sock_open (i32.const 1) (i32.const 1) (i32.const 16)))
            (local.set $fd (i32.load (i32.const 16)))
            (i32.store8 (i32.const 404) (call $send_to (local.get $fd) (i32.const {udp_allowed})))
            (i32.store8 (i32.const 406) (call $send_to (local.get $fd) (i32.const {udp_denied})))
            (call $print (i32.const 400) (i32.const 8))
            (drop (call $sock_recv_from (local.get $fd) (i32.const 56) (i32.const 1)
                (i32.const 64) (i32.const 0) (i32.const 40) (i32.const 44) (i32.const 48)))
            (call $print (i32.const 500) (i32.load (i32.const 44)))
            ;; Stay up: a returning program would be restarted and run all this again.
            (drop (call $fd_read (local.get $fd) (i32.const 24) (i32.const 1) (i32.const 20)))))"#
    ))
    .unwrap()
}

#[test]
fn fd_write_and_fd_read_work_on_sockets_and_datagrams_follow_the_policy() {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let allowed = UdpSocket::bind("127.0.0.1:0").unwrap();
    allowed
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let denied = UdpSocket::bind("127.0.0.1:0").unwrap();
    denied
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    let allowed_port = allowed.local_addr().unwrap().port();
    let denied_port = denied.local_addr().unwrap().port();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("io.wasm"),
        guest(tcp_port, allowed_port, denied_port),
    )
    .unwrap();
    let server = Server::start(&format!(
        "[app]\nname = \"io\"\n\n[component.io]\nsource = {:?}\nexecutor = \"service\"\n\
         ports = [8080]\nallowed_outbound_hosts = [\"tcp://127.0.0.1:{tcp_port}\", \
         \"udp://127.0.0.1:{allowed_port}\"]\n",
        dir.path().join("io.wasm").display().to_string()
    ));

    // What the guest wrote with fd_write arrives on the connection; our answer is what its
    // fd_read returns.
    tcp.set_nonblocking(false).unwrap();
    let (mut connection, _) = tcp.accept().unwrap();
    connection
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut greeting = [0u8; 5];
    std::io::Read::read_exact(&mut connection, &mut greeting).unwrap();
    assert_eq!(&greeting, b"hello");
    std::io::Write::write_all(&mut connection, b"world over tcp\n").unwrap();
    server.wait_for_log(
        &["world over tcp", "\"component\":\"io\""],
        Duration::from_secs(10),
    );

    // The allowed datagram arrives, the denied one does not (errno 2, EACCES), and is logged.
    let mut buffer = [0u8; 64];
    let (n, guest_addr) = allowed.recv_from(&mut buffer).expect("no datagram arrived");
    assert_eq!(&buffer[..n], b"hello");
    assert!(
        denied.recv_from(&mut buffer).is_err(),
        "a denied datagram arrived"
    );
    server.wait_for_log(&["udp 0 2"], Duration::from_secs(10));
    server.wait_for_log(
        &[
            "connection refused (EACCES)",
            &format!("127.0.0.1:{denied_port}"),
        ],
        Duration::from_secs(10),
    );

    // A datagram from a source the policy does not allow is dropped; the allowed one is read.
    denied
        .send_to(b"spam from elsewhere\n", guest_addr)
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    allowed.send_to(b"pong from allowed\n", guest_addr).unwrap();
    server.wait_for_log(&["pong from allowed"], Duration::from_secs(10));
    assert!(
        !server.stderr().contains("spam from elsewhere"),
        "logs:\n{}",
        server.stderr()
    );
}
