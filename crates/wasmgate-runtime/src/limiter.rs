//! Per-instance memory limit. Growing past the limit fails the guest's `memory.grow` (as the
//! spec allows) rather than trapping at once, so a guest that copes with allocation failure
//! keeps running; the limiter remembers that the limit was hit so a later failure is reported
//! as a memory-limit outcome, and it tracks the high-water mark for telemetry.

use wasmtime::ResourceLimiter;

#[derive(Debug)]
pub struct MemoryLimiter {
    limit: usize,
    peak: usize,
    hit_limit: bool,
}

impl MemoryLimiter {
    pub fn new(limit: u64) -> MemoryLimiter {
        MemoryLimiter {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            peak: 0,
            hit_limit: false,
        }
    }

    /// Largest linear memory size any memory of the instance reached, in bytes.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// Whether the guest asked for more memory than its limit allows.
    pub fn hit_limit(&self) -> bool {
        self.hit_limit
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.limit && maximum.is_none_or(|max| desired <= max);
        if allowed {
            self.peak = self.peak.max(desired);
        } else {
            self.hit_limit = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|max| desired <= max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_within_the_limit_is_allowed_and_tracked() {
        let mut limiter = MemoryLimiter::new(1 << 20);
        assert!(limiter.memory_growing(0, 65536, None).unwrap());
        assert!(limiter.memory_growing(65536, 1 << 20, None).unwrap());
        assert_eq!(limiter.peak(), 1 << 20);
        assert!(!limiter.hit_limit());
    }

    #[test]
    fn growth_past_the_limit_fails_and_is_remembered() {
        let mut limiter = MemoryLimiter::new(1 << 20);
        assert!(!limiter.memory_growing(0, (1 << 20) + 65536, None).unwrap());
        assert!(limiter.hit_limit());
        assert_eq!(limiter.peak(), 0);
    }

    #[test]
    fn the_memory_own_maximum_also_applies() {
        let mut limiter = MemoryLimiter::new(1 << 30);
        assert!(!limiter.memory_growing(0, 2 << 20, Some(1 << 20)).unwrap());
    }
}
