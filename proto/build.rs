//! Compiles `tributary/v1/*.proto` with protox (no protoc needed) and generates the tonic
//! services, plus a file descriptor set for gRPC reflection.
use std::{env, path::PathBuf};

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time: a build-script binary cached from another checkout
    // must not point at that checkout.
    let proto_root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let files = ["event.proto", "ingest.proto", "query.proto"]
        .map(|f| proto_root.join("tributary/v1").join(f));
    let fds = protox::compile(&files, [&proto_root])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("tributary_descriptor.bin"),
        fds.encode_to_vec(),
    )?;
    tonic_prost_build::configure().compile_fds(fds)?;
    println!(
        "cargo:rerun-if-changed={}",
        proto_root.join("tributary").display()
    );
    Ok(())
}
