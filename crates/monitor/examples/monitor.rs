//! A progress bar and a TensorBoard log for a toy job: `cargo run --example monitor -- DIR`
//! writes `DIR/events.out.tfevents.*` (open it with `tensorboard --logdir DIR`) and reads it
//! back.

use vaekit_core::Progress;
use vaekit_monitor::{EventWriter, ProgressBar, images, read_events, scalars};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("vaekit-monitor-example"));
    let mut tb = EventWriter::create(&dir)?;
    let mut bar = ProgressBar::new();
    let epochs = 20;
    bar.start("toy fit", epochs, "epochs");
    for epoch in 1..=epochs {
        let loss = 90.0 + 60.0 / epoch as f64;
        tb.add_scalars(
            epoch as i64,
            &[
                ("train/loss", loss),
                ("lr", 1e-3 * 0.9f64.powi(epoch as i32)),
            ],
        )?;
        bar.update(epoch, &[("loss", loss)]);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    bar.finish(&[]);
    // A 32 × 32 grey gradient as a PNG image.
    let pixels: Vec<u8> = (0..32 * 32).map(|i| ((i % 32) * 8) as u8).collect();
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, 32, 32);
        enc.set_color(png::ColorType::Grayscale);
        enc.write_header()?.write_image_data(&pixels)?;
    }
    tb.add_image("gradient", epochs as i64, &png_bytes, 32, 32, 1)?;
    tb.flush()?;
    let events = read_events(tb.path())?;
    println!(
        "{}: {} scalars, {} images",
        tb.path().display(),
        scalars(&events).len(),
        images(&events).len()
    );
    Ok(())
}
