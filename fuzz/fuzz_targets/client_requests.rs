//! Fuzz target `client_requests`: see `switchyard_fuzz::client_request` for what it drives and why.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_fuzz::client_request(data));
