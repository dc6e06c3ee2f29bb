//! A configuration file as a layer over a preset: the preset (the file's `preset` key, else
//! `--preset`), then the file's fields, then the command-line flags. Unknown keys are
//! rejected by name.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::Path;
use vaekit_models::RunConfig;

/// Reads a `.toml` or `.json` configuration file as a layer over its preset (`preset` in the
/// file, else `default_preset`): a table in the file is merged into the preset's key by key;
/// a table whose `kind` differs from the preset's (another flow, another network family)
/// replaces it whole. Every key of the file must be a configuration field.
///
/// # Errors
/// An unreadable or malformed file, an unknown preset, an unknown key (named with its path),
/// a value of the wrong type.
pub fn from_file(path: &Path, default_preset: &str) -> Result<RunConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let layer: Value = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => {
            let t: toml::Table = toml::from_str(&text)
                .with_context(|| format!("{}: invalid TOML", path.display()))?;
            serde_json::to_value(t)?
        }
        _ => serde_json::from_str(&text)
            .with_context(|| format!("{}: invalid JSON", path.display()))?,
    };
    layered(&layer, default_preset).with_context(|| format!("{}", path.display()))
}

/// [`from_file`] on a parsed layer.
///
/// # Errors
/// Those of [`from_file`].
pub fn layered(layer: &Value, default_preset: &str) -> Result<RunConfig> {
    let Value::Object(fields) = layer else {
        bail!("a configuration must be a table of fields");
    };
    let preset = match fields.get("preset") {
        Some(Value::String(p)) => p.as_str(),
        Some(other) => bail!("`preset` must be a preset's name, got {other}"),
        None => default_preset,
    };
    let base = match RunConfig::preset(preset) {
        Ok(base) => base,
        // A complete configuration under a name of its own (not a preset to layer over).
        Err(unknown) => match serde_json::from_value::<RunConfig>(layer.clone()) {
            Ok(complete) => {
                if let Some(key) = unknown_key(layer, &serde_json::to_value(&complete)?, "") {
                    bail!("unknown configuration key `{key}`");
                }
                return Ok(complete);
            }
            Err(_) => return Err(unknown.into()),
        },
    };
    let mut merged = serde_json::to_value(base)?;
    merge(&mut merged, layer);
    let cfg: RunConfig = serde_json::from_value(merged)
        .map_err(|e| anyhow::anyhow!("invalid configuration over preset {preset:?}: {e}"))?;
    let resolved = serde_json::to_value(&cfg)?;
    if let Some(key) = unknown_key(layer, &resolved, "") {
        bail!("unknown configuration key `{key}`");
    }
    Ok(cfg)
}

/// Merges `layer` into `base`: tables key by key, except a table whose `kind` differs from
/// the base's, which replaces it; any other value replaces.
fn merge(base: &mut Value, layer: &Value) {
    match (base, layer) {
        (Value::Object(b), Value::Object(l)) => {
            for (k, v) in l {
                match b.get_mut(k) {
                    Some(slot @ Value::Object(_)) if v.is_object() && same_kind(slot, v) => {
                        merge(slot, v)
                    }
                    Some(slot) => *slot = v.clone(),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, l) => *b = l.clone(),
    }
}

/// Whether two tables describe the same variant: no `kind` in the layer, or the same.
fn same_kind(base: &Value, layer: &Value) -> bool {
    match layer.get("kind") {
        None => true,
        Some(k) => base.get("kind") == Some(k),
    }
}

/// The first key path of `layer` that the resolved configuration does not have.
fn unknown_key(layer: &Value, resolved: &Value, prefix: &str) -> Option<String> {
    let Value::Object(fields) = layer else {
        return None;
    };
    for (k, v) in fields {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match resolved.get(k) {
            None => return Some(path),
            Some(r) => {
                if let Some(bad) = unknown_key(v, r, &path) {
                    return Some(bad);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vaekit_models::FlowConfig;

    #[test]
    fn a_file_layers_over_its_preset() -> Result<()> {
        let text = "preset = \"iwae-dense\"\nepochs = 7\n[optimizer]\neps = 1e-6\n";
        let layer = serde_json::to_value(toml::from_str::<toml::Table>(text)?)?;
        let cfg = layered(&layer, "sbn")?;
        let mut expected = RunConfig::preset("iwae-dense")?;
        expected.epochs = 7;
        expected.optimizer.eps = 1e-6;
        assert_eq!(cfg, expected);
        // Without `preset`, the default preset; a changed `kind` replaces the table.
        let cfg = layered(
            &json!({"flow": {"kind": "planar", "steps": 4}, "networks": {"context_dim": 8}}),
            "iwae-dense",
        )?;
        assert_eq!(cfg.preset, "iwae-dense");
        assert_eq!(cfg.model.flow, FlowConfig::Planar { steps: 4 });
        assert_eq!(cfg.model.networks.context_dim(), 8);
        // Same kind: merged field by field.
        let cfg = layered(&json!({"flow": {"steps": 2}}), "iaf-resnet")?;
        let FlowConfig::Iaf { steps, hidden, .. } = &cfg.model.flow else {
            bail!("not an IAF: {:?}", cfg.model.flow)
        };
        assert_eq!((*steps, hidden.len()), (2, 2));
        // A complete config.json reads back as itself.
        let full = RunConfig::preset("snf-gated")?;
        assert_eq!(layered(&serde_json::to_value(&full)?, "iwae-dense")?, full);
        Ok(())
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = |v: Value| {
            layered(&v, "iwae-dense")
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default()
        };
        assert!(err(json!({"epochz": 3})).contains("`epochz`"));
        assert!(err(json!({"optimizer": {"beta": 0.5}})).contains("`optimizer.beta`"));
        assert!(
            err(json!({"flow": {"kind": "planar", "steps": 2, "hidden": [4]}}))
                .contains("`flow.hidden`")
        );
        assert!(err(json!({"preset": "nope"})).contains("unknown preset"));
        // A complete configuration may carry a name of its own.
        let mut own = serde_json::to_value(RunConfig::preset("sbn").unwrap()).unwrap();
        own["preset"] = json!("my-sbn");
        let cfg = layered(&own, "iwae-dense").unwrap();
        assert_eq!(cfg.preset, "my-sbn");
        own["extra"] = json!(1);
        assert!(err(own).contains("`extra`"));
        assert!(err(json!({"epochs": "many"})).contains("invalid configuration"));
        assert!(err(json!([1, 2])).contains("table of fields"));
    }
}
