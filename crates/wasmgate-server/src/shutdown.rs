//! The stop signal. One [`Shutdown`] is triggered (by SIGINT/SIGTERM in the binary, directly in
//! tests); every listener watching it stops accepting and drains its connections.

use tokio::sync::watch;

#[derive(Clone)]
pub struct Shutdown {
    sender: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown {
            sender: watch::Sender::new(false),
        }
    }

    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    /// Resolves once [`Shutdown::trigger`] has been called (at once if it already was).
    pub async fn triggered(&self) {
        let mut receiver = self.sender.subscribe();
        // An error means the sender is gone, which cannot happen while `self` lives.
        let _ = receiver.wait_for(|stopped| *stopped).await;
    }
}
