//! Steward's HTTP surface: health endpoints served as a host service.
#![deny(missing_docs)]
