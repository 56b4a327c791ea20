//! Fuzz target `admin_requests`: see `switchyard_fuzz::admin_request` for what it drives and why.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_fuzz::admin_request(data));
