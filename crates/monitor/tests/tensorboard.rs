//! Event files read back: scalars, images, the version record, a cut tail and damage.

use vaekit_monitor::tensorboard::What;
use vaekit_monitor::{EventWriter, images, read_events, scalars};

#[test]
fn scalars_and_images_read_back_exactly() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut tb = EventWriter::create(&dir.path().join("tb"))?;
    tb.add_scalars(1, &[("train/loss", 120.5), ("lr", 1e-3)])?;
    tb.add_scalar("test/neg_elbo", 2, 101.25)?;
    let png = [0x89u8, b'P', b'N', b'G', 1, 2, 3];
    tb.add_image("samples", 2, &png, 28, 28, 1)?;
    tb.flush()?;
    let name = tb
        .path()
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    assert!(name.starts_with("events.out.tfevents."), "{name}");
    let events = read_events(tb.path())?;
    assert_eq!(events.len(), 4);
    assert_eq!(
        events[0].what,
        Some(What::FileVersion("brain.Event:2".into()))
    );
    assert!(events.iter().all(|e| e.wall_time > 1.6e9));
    assert_eq!(
        scalars(&events),
        vec![
            ("train/loss".to_string(), 1, 120.5f32),
            ("lr".to_string(), 1, 1e-3f32),
            ("test/neg_elbo".to_string(), 2, 101.25f32),
        ]
    );
    let imgs = images(&events);
    assert_eq!(imgs.len(), 1);
    let (tag, step, image) = &imgs[0];
    assert_eq!((tag.as_str(), *step), ("samples", 2));
    assert_eq!((image.width, image.height, image.colorspace), (28, 28, 1));
    assert_eq!(image.encoded_image_string, png);
    // A second writer in the same directory (a resumed run) gets a file of its own, and
    // marks its restart.
    let mut again = EventWriter::create(&dir.path().join("tb"))?;
    assert_ne!(again.path(), tb.path());
    again.add_session_start(3)?;
    again.flush()?;
    let events = read_events(again.path())?;
    match &events[1].what {
        Some(What::SessionLog(log)) => assert_eq!((log.status, events[1].step), (1, 3)),
        other => panic!("no session start: {other:?}"),
    }
    Ok(())
}

#[test]
fn a_cut_tail_is_skipped_and_damage_is_named() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut tb = EventWriter::create(dir.path())?;
    tb.add_scalar("a", 1, 1.0)?;
    tb.add_scalar("a", 2, 2.0)?;
    tb.flush()?;
    let path = tb.path().to_path_buf();
    drop(tb);
    let bytes = std::fs::read(&path)?;
    std::fs::write(&path, &bytes[..bytes.len() - 5])?;
    assert_eq!(
        scalars(&read_events(&path)?),
        vec![("a".to_string(), 1, 1.0f32)]
    );
    let mut damaged = bytes.clone();
    let last = damaged.len() - 8;
    damaged[last] ^= 0x40;
    std::fs::write(&path, &damaged)?;
    let err = read_events(&path)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("record 2") && err.contains("checksum"),
        "{err}"
    );
    assert!(err.contains(&path.display().to_string()), "{err}");
    Ok(())
}
