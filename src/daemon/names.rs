//! Generated names and uids: Kubernetes' `generateName` suffixes and UUIDv4-shaped uids.
//! Not for security: a xorshift generator seeded once from the kernel.

use std::io::Read;

/// A NonIndexed Job's pods' `generateName`, `<job>-`, cut to the API server's 58 characters.
pub fn generate_name(job: &str) -> String {
    format!("{job}-").chars().take(58).collect()
}

pub struct Names {
    state: u64,
}

/// Kubernetes' alphabet for generated suffixes (no vowels, no look-alikes).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

impl Names {
    pub fn new() -> Names {
        let mut seed = [0u8; 8];
        let from_kernel =
            std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut seed));
        let mut state = u64::from_le_bytes(seed);
        if from_kernel.is_err() || state == 0 {
            state = u64::from(std::process::id()) << 32 | 0x9e37_79b9;
        }
        Names { state }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A name from a `generateName` prefix already within 58 characters: it and five
    /// random characters.
    pub fn generated(&mut self, prefix: &str) -> String {
        let mut name = prefix.to_string();
        for _ in 0..5 {
            let i = (self.next() % ALPHABET.len() as u64) as usize;
            name.push(char::from(ALPHABET[i]));
        }
        name
    }

    pub fn uid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        let hex = format!("{a:016x}{b:016x}");
        format!(
            "{}-{}-4{}-a{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..32]
        )
    }

    pub fn event_suffix(&mut self) -> String {
        format!("{:016x}", self.next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_look_like_kubernetes() {
        let mut n = Names::new();
        let p = n.generated(&generate_name("simple-job"));
        assert!(p.starts_with("simple-job-") && p.len() == 16, "{p}");
        assert!(p[11..].bytes().all(|c| ALPHABET.contains(&c)));
        let long = n.generated(&generate_name(&"a".repeat(70)));
        assert_eq!(long.len(), 63);
        let uid = n.uid();
        assert_eq!(uid.len(), 36);
        assert_eq!(uid.as_bytes()[14], b'4');
        assert_ne!(n.uid(), uid);
    }
}
