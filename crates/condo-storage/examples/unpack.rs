//! Unpacks a layer file into a new directory (used by bench/storage-unpack.sh).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, layer, dest] = &args[..] else {
        return Err("usage: unpack LAYER DEST".into());
    };
    let f = std::fs::File::open(layer)?;
    condo_storage::image::unpack::unpack_new(
        f,
        std::path::Path::new(dest),
        condo_storage::image::unpack::Whiteouts::Overlay,
    )?;
    Ok(())
}
