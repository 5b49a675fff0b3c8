//! A fixed-size, NUL-padded UTF-8 string that can live in shared memory: no pointers, valid when
//! zeroed, and its unused bytes always zero, so that two equal texts are equal byte for byte (the
//! statistics table hashes its keys as bytes).

#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct FixedText<const N: usize>([u8; N]);

impl<const N: usize> FixedText<N> {
    /// `text`, cut at the last character boundary that fits.
    pub fn new(text: &str) -> Self {
        let mut end = text.len().min(N);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0; N];
        bytes[..end].copy_from_slice(&text.as_bytes()[..end]);
        FixedText(bytes)
    }

    pub fn as_str(&self) -> &str {
        let end = self.0.iter().position(|&byte| byte == 0).unwrap_or(N);
        std::str::from_utf8(&self.0[..end]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::FixedText;

    #[test]
    fn cuts_at_a_character_boundary() {
        assert_eq!(FixedText::<4>::new("abcé").as_str(), "abc");
        assert_eq!(FixedText::<5>::new("abcé").as_str(), "abcé");
        assert_eq!(FixedText::<8>::new("").as_str(), "");
    }

    #[test]
    fn equal_texts_are_equal_bytes() {
        assert!(FixedText::<8>::new("ab") == FixedText::<8>::new("ab"));
        assert!(FixedText::<8>::new("ab") != FixedText::<8>::new("abc"));
    }
}
