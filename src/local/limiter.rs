//! A FIFO limiter for builds that tells each waiter how many are queued ahead of it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Debug)]
struct State {
    running: usize,
    max: usize,
    queue: VecDeque<u64>,
    next_ticket: u64,
}

/// At most `max` holders at once; waiters are served in arrival order.
#[derive(Debug, Clone)]
pub struct Limiter {
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
}

/// A held slot; dropping it frees the slot for the next waiter.
#[derive(Debug)]
pub struct Permit {
    limiter: Limiter,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Ok(mut s) = self.limiter.state.lock() {
            s.running = s.running.saturating_sub(1);
        }
        self.limiter.notify.notify_waiters();
    }
}

/// Removes a cancelled waiter from the queue.
struct Ticket<'a> {
    limiter: &'a Limiter,
    id: u64,
    done: bool,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.done {
            if let Ok(mut s) = self.limiter.state.lock() {
                s.queue.retain(|t| *t != self.id);
            }
            self.limiter.notify.notify_waiters();
        }
    }
}

impl Limiter {
    /// A limiter allowing `max` (at least 1) concurrent holders.
    pub fn new(max: usize) -> Limiter {
        Limiter {
            state: Arc::new(Mutex::new(State {
                running: 0,
                max: max.max(1),
                queue: VecDeque::new(),
                next_ticket: 0,
            })),
            notify: Arc::new(Notify::new()),
        }
    }

    /// The configured bound.
    pub fn max(&self) -> usize {
        self.state.lock().map(|s| s.max).unwrap_or(1)
    }

    /// Waits for a slot; `on_queued(ahead)` is called whenever this waiter's position changes.
    pub async fn acquire(&self, mut on_queued: impl FnMut(usize)) -> Permit {
        let id = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if s.queue.is_empty() && s.running < s.max {
                s.running += 1;
                return Permit {
                    limiter: self.clone(),
                };
            }
            let id = s.next_ticket;
            s.next_ticket += 1;
            s.queue.push_back(id);
            id
        };
        let mut ticket = Ticket {
            limiter: self,
            id,
            done: false,
        };
        let mut last_reported = None;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let ahead = {
                let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                let pos = s.queue.iter().position(|t| *t == id).unwrap_or(0);
                if pos == 0 && s.running < s.max {
                    s.queue.pop_front();
                    s.running += 1;
                    ticket.done = true;
                    drop(s);
                    // The next waiter may also fit now.
                    self.notify.notify_waiters();
                    return Permit {
                        limiter: self.clone(),
                    };
                }
                pos
            };
            if last_reported != Some(ahead) {
                last_reported = Some(ahead);
                on_queued(ahead);
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn bounds_and_orders() {
        let l = Limiter::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut hs = Vec::new();
        for i in 0..8 {
            let (l, running, peak, order) =
                (l.clone(), running.clone(), peak.clone(), order.clone());
            hs.push(tokio::spawn(async move {
                let _p = l.acquire(|_| {}).await;
                order.lock().unwrap().push(i);
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                running.fetch_sub(1, Ordering::SeqCst);
            }));
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        for h in hs {
            h.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn cancelled_waiter_leaves_queue() {
        let l = Limiter::new(1);
        let p = l.acquire(|_| {}).await;
        let l2 = l.clone();
        let waiter = tokio::spawn(async move { l2.acquire(|_| {}).await });
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        waiter.abort();
        let _ = waiter.await;
        drop(p);
        let mut reported = Vec::new();
        let _p = l.acquire(|a| reported.push(a)).await;
        assert!(reported.is_empty());
    }
}
