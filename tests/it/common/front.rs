//! A fixed address in front of a server that restarts: the test holds this listener for its
//! whole life and pipes each connection to wherever the server listens now. Restarted
//! servers bind port 0, so no test frees a port number and hopes to get it back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};

/// The front address and where it currently forwards to.
pub struct FrontDoor {
    /// `http://127.0.0.1:PORT`, stable across server restarts.
    pub base: String,
    pub addr: SocketAddr,
    backend: Arc<Mutex<Option<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FrontDoor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FrontDoor {
    /// Listens on a fresh loopback port; connections are closed at once until
    /// [`FrontDoor::point_to`] names a backend.
    pub async fn start() -> FrontDoor {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let backend: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let target = backend.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { continue };
                let to = *target.lock().unwrap();
                tokio::spawn(async move {
                    // No backend, or it is down: the client sees the connection closed, as it
                    // would see a refused connect.
                    let Some(to) = to else { return };
                    let Ok(mut outbound) = TcpStream::connect(to).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        FrontDoor { base: format!("http://{addr}"), addr, backend, task }
    }

    /// Forwards new connections to the server at `base` (`http://host:port`).
    pub fn point_to(&self, base: &str) {
        let addr: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
        *self.backend.lock().unwrap() = Some(addr);
    }

    /// Closes new connections at once, as while the server is down (its old port may
    /// already belong to another process).
    pub fn point_nowhere(&self) {
        *self.backend.lock().unwrap() = None;
    }
}
