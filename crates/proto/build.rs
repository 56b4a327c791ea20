//! Compiles the wire contract in `<workspace>/proto` with the vendored `protoc`.
//!
//! No system `protoc` is needed: `protoc-bin-vendored` ships the binary and we
//! hand its path to prost-build directly (`Config::protoc_executable`), which
//! avoids setting `PROTOC` in the environment (that needs `unsafe` in edition
//! 2024, and the workspace forbids it).

use std::path::PathBuf;

type BuildResult = Result<(), Box<dyn std::error::Error>>;

fn main() -> BuildResult {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    println!("cargo:rerun-if-changed={}", proto_root.display());
    println!("cargo:rerun-if-changed=build.rs");

    let protos = [
        proto_root.join("switchyard/client/v1/client.proto"),
        proto_root.join("switchyard/admin/v1/admin.proto"),
        proto_root.join("switchyard/raft/v1/raft.proto"),
    ];
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }

    let mut config = prost_build::Config::new();
    config
        .protoc_executable(protoc_bin_vendored::protoc_bin_path()?)
        // Deterministic iteration order for map fields (feature flags).
        .btree_map(["."])
        .file_descriptor_set_path(out_dir.join("switchyard_descriptor.bin"))
        // One file that nests the packages as modules (`switchyard::admin::v1`),
        // so that cross-package references (`super::super::client::v1::Policy`)
        // resolve; lib.rs re-exports the leaves.
        .include_file("switchyard_includes.rs");

    tonic_prost_build::configure()
        .emit_rerun_if_changed(false)
        .compile_with_config(config, &protos, &[proto_root])?;
    Ok(())
}
