//! Value encoding: one format-version byte, then JSON. Decoding never panics.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;

const VERSION: u8 = 1;

pub(crate) fn encode<V: Serialize>(value: &V) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![VERSION];
    serde_json::to_writer(&mut out, value).map_err(|_| StoreError::TooLarge { what: "record" })?;
    Ok(out)
}

pub(crate) fn decode<V: DeserializeOwned>(bytes: &[u8]) -> Option<V> {
    match bytes.split_first() {
        Some((&VERSION, rest)) => serde_json::from_slice(rest).ok(),
        _ => None,
    }
}

pub(crate) fn u64_of(bytes: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_round_trip_and_garbage_is_rejected() {
        let bytes = super::encode(&("a", 1)).unwrap();
        assert_eq!(super::decode::<(String, i32)>(&bytes), Some(("a".to_string(), 1)));
        assert_eq!(super::decode::<(String, i32)>(b"\x09junk"), None);
        assert_eq!(super::decode::<(String, i32)>(b""), None);
    }
}
