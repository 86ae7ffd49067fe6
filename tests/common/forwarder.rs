//! A TCP forwarder for clients the test does not control (a browser): it stands between the client
//! and the proxy, passes every byte both ways unchanged, and keeps a copy of each connection's
//! ClientHello records (a tee), so a test can fingerprint the very bytes the proxy received.
//!
//! The proxy sees the forwarder's address as the peer, but the hello is the client's own, byte for
//! byte and in the client's segmentation, so its fingerprints are the client's.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use helloguard::hello::{HelloReader, Progress};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A running forwarder; it stops with the test's runtime.
pub struct Forwarder {
    /// Where clients connect.
    pub addr: SocketAddr,
    hellos: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Forwarder {
    /// Listen on a free loopback port and forward each connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hellos = Arc::new(Mutex::new(Vec::new()));
        let recorded = hellos.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                // A client that hangs up mid-stream is no error for the forwarder.
                tokio::spawn(relay(client, upstream, recorded.clone()));
            }
        });
        Self { addr, hellos }
    }

    /// How many ClientHellos were recorded so far (an index for [`Forwarder::hellos_since`]).
    pub fn hello_count(&self) -> usize {
        self.hellos.lock().unwrap().len()
    }

    /// The TLS records of every ClientHello completed since `index`, in order of completion.
    pub fn hellos_since(&self, index: usize) -> Vec<Vec<u8>> {
        self.hellos.lock().unwrap()[index..].to_vec()
    }
}

/// Forward one connection; record its hello records once the crate's reader says they are complete.
async fn relay(mut client: TcpStream, upstream: SocketAddr, hellos: Arc<Mutex<Vec<Vec<u8>>>>) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    server.set_nodelay(true)?;
    let mut reader = HelloReader::default();
    let mut recorded = Vec::new();
    let mut chunk = vec![0u8; 4096];
    loop {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        server.write_all(&chunk[..n]).await?;
        match reader.feed(&chunk[..n]) {
            Ok(Progress::NeedMore) => recorded.extend_from_slice(&chunk[..n]),
            Ok(Progress::Complete { consumed }) => {
                recorded.extend_from_slice(&chunk[..consumed]);
                hellos.lock().unwrap().push(recorded);
                break;
            }
            // Not a hello: nothing to record, the bytes are still forwarded.
            Err(_) => break,
        }
    }
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}
