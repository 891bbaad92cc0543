//! The bounded backoff schedule for Proxmox lock contention.

use std::time::Duration;

/// How often and how patiently a command that hit a Proxmox lock is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = never retry).
    pub retries: u32,
    /// Wait before the first retry; it doubles each time.
    pub initial: Duration,
    /// Upper bound of a single wait.
    pub max: Duration,
}

impl Default for RetryPolicy {
    /// Proxmox's own lock wait is tens of seconds, so a few retries spread over about a
    /// minute ride out a neighbour's clone without hiding a stuck lock for long.
    fn default() -> Self {
        RetryPolicy {
            retries: 5,
            initial: Duration::from_secs(2),
            max: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The waits before each retry, in order; its length is `retries`.
    pub fn delays(&self) -> Vec<Duration> {
        (0..self.retries)
            .map(|n| {
                let factor = 1u32.checked_shl(n).unwrap_or(u32::MAX);
                self.initial.saturating_mul(factor).min(self.max)
            })
            .collect()
    }

    /// The longest the retries can wait in total.
    pub fn bound(&self) -> Duration {
        self.delays().iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let p = RetryPolicy {
            retries: 5,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
        };
        let ms: Vec<u128> = p.delays().iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 500, 500]);
        assert_eq!(p.bound(), Duration::from_millis(1700));
        assert!(RetryPolicy { retries: 0, ..p }.delays().is_empty());
    }

    #[test]
    fn huge_retry_counts_do_not_overflow() {
        let p = RetryPolicy {
            retries: 40,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(3),
        };
        assert_eq!(p.delays().last(), Some(&Duration::from_secs(3)));
    }
}
