//! Conversions between the CA engine's time type (`time::OffsetDateTime`) and the one
//! Kubernetes status fields use (`Time`, a jiff timestamp), at second precision.
//!
//! Owns only these two functions. It must not read the clock.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use time::OffsetDateTime;

/// A Kubernetes `Time` (seconds precision) for an engine time.
pub fn k8s_time(t: OffsetDateTime) -> Time {
    Time(Timestamp::from_second(t.unix_timestamp()).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// The engine time for a Kubernetes `Time`.
pub fn engine_time(t: &Time) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.0.as_second()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_at_second_precision() {
        let t = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
        assert_eq!(engine_time(&k8s_time(t)), t);
    }
}
