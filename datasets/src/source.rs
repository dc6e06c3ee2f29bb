//! What a trainer and an evaluation read: rows of data by index, from any container.

use crate::{DataError, ImageSet, Result};
use candle::{Device, Tensor};

/// `len()` rows of `P` values each, read by index as `[n, P]` f32 tensors. vaekit's trainer
/// and its evaluations take any `DataSource`: an [`ImageSet`] (bytes, scaled to `[0, 1]` per
/// batch), or a `Tensor` whose first dimension indexes the rows (a test set binarized once,
/// or data that are not images at all). A per-batch transform (dynamic binarization) is the
/// trainer's setting ([`crate::Binarization`]), not the source's.
pub trait DataSource: Send + Sync {
    /// Number of rows.
    fn len(&self) -> usize;

    /// Whether there are no rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows `indices`, in that order, on `device`.
    ///
    /// # Shapes
    /// `[indices.len(), P]`.
    ///
    /// # Errors
    /// [`DataError::Config`] for an index out of range; tensor errors.
    fn gather(&self, indices: &[usize], device: &Device) -> Result<Tensor>;

    /// The `count` rows from `start` on (the default gathers them by index).
    ///
    /// # Errors
    /// Those of [`DataSource::gather`].
    fn rows(&self, start: usize, count: usize, device: &Device) -> Result<Tensor> {
        self.gather(&(start..start + count).collect::<Vec<_>>(), device)
    }
}

impl DataSource for ImageSet {
    fn len(&self) -> usize {
        ImageSet::len(self)
    }

    fn gather(&self, indices: &[usize], device: &Device) -> Result<Tensor> {
        self.gather_f32(indices, device)
    }
}

impl DataSource for Tensor {
    fn len(&self) -> usize {
        self.dims().first().copied().unwrap_or(0)
    }

    fn gather(&self, indices: &[usize], device: &Device) -> Result<Tensor> {
        let n = DataSource::len(self);
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(DataError::Config(format!(
                "row index {bad} out of range for {n} rows"
            )));
        }
        let rows = if self.is_contiguous() {
            let ids: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
            let ids = Tensor::from_vec(ids, indices.len(), self.device())?;
            self.index_select(&ids, 0)?
        } else {
            // candle's `index_select` reads contiguous tensors only; copying the whole
            // source per batch would cost O(N), so a strided view is gathered row by row.
            let rows = indices
                .iter()
                .map(|&i| self.narrow(0, i, 1))
                .collect::<candle::Result<Vec<_>>>()?;
            Tensor::cat(&rows, 0)?
        };
        Ok(rows.to_device(device)?)
    }

    fn rows(&self, start: usize, count: usize, device: &Device) -> Result<Tensor> {
        let n = DataSource::len(self);
        if start + count > n {
            return Err(DataError::Config(format!(
                "rows {start}..{} out of range for {n} rows",
                start + count
            )));
        }
        Ok(self
            .narrow(0, start, count)?
            .contiguous()?
            .to_device(device)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tensor_and_an_image_set_give_the_same_rows() -> Result<()> {
        let dev = Device::Cpu;
        let set = crate::ImageSet::new(
            (0..6 * 4).map(|v| (v * 10) as u8).collect(),
            vec![0; 6],
            2,
            2,
        )?;
        let t = set.images_f32(&dev)?;
        let idx = [4, 0, 5];
        let a = DataSource::gather(&set, &idx, &dev)?.to_vec2::<f32>()?;
        let b = DataSource::gather(&t, &idx, &dev)?.to_vec2::<f32>()?;
        assert_eq!(a, b);
        // A strided view (every other pixel) gives the same rows as its copy.
        let view = t.reshape((6, 2, 2))?.narrow(2, 0, 1)?.squeeze(2)?;
        assert!(!view.is_contiguous());
        let copy = view.contiguous()?;
        assert_eq!(
            DataSource::gather(&view, &idx, &dev)?.to_vec2::<f32>()?,
            DataSource::gather(&copy, &idx, &dev)?.to_vec2::<f32>()?
        );
        let r = t.rows(1, 2, &dev)?.to_vec2::<f32>()?;
        assert_eq!(r, DataSource::rows(&set, 1, 2, &dev)?.to_vec2::<f32>()?);
        assert!(DataSource::gather(&t, &[6], &dev).is_err());
        assert!(t.rows(5, 2, &dev).is_err());
        Ok(())
    }
}
