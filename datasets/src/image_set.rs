//! `ImageSet`: images of one size with their labels, held as bytes on the host.

use crate::error::{DataError, Result};
use candle::{Device, Tensor};
use vaekit_core::{NoiseSource, permutation};

/// `n` grey-scale images of `rows x cols` 8-bit pixels and their labels.
///
/// Images stay on the host as bytes (47 MB for MNIST's training set); tensors are made per
/// batch with [`ImageSet::gather_f32`] or whole with [`ImageSet::images_f32`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    images: Vec<u8>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
}

impl ImageSet {
    /// Wraps `images` (`n * rows * cols` bytes, row-major) and `labels` (`n` bytes).
    ///
    /// # Errors
    /// [`DataError::Config`] when the sizes disagree.
    pub fn new(images: Vec<u8>, labels: Vec<u8>, rows: usize, cols: usize) -> Result<Self> {
        let per = rows * cols;
        if per == 0 || images.len() != labels.len() * per {
            return Err(DataError::Config(format!(
                "image set: {} image bytes do not hold {} images of {rows}x{cols}",
                images.len(),
                labels.len()
            )));
        }
        Ok(Self {
            images,
            labels,
            rows,
            cols,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image height.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Image width.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Pixels per image, `rows * cols` (784 for MNIST).
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }

    /// All pixels, `n * rows * cols` bytes, image after image.
    pub fn images_u8(&self) -> &[u8] {
        &self.images
    }

    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// How many images carry each label `0..=max label`.
    pub fn label_counts(&self) -> Vec<usize> {
        let mut counts = vec![0usize; self.labels.iter().max().map_or(0, |&m| usize::from(m) + 1)];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// The mean pixel intensity in `[0, 1]` (pixel / 255), accumulated exactly.
    pub fn mean_intensity(&self) -> f64 {
        if self.images.is_empty() {
            return 0.0;
        }
        let total: u64 = self.images.iter().map(|&p| u64::from(p)).sum();
        total as f64 / 255.0 / self.images.len() as f64
    }

    /// The whole set as a `u8` tensor.
    ///
    /// # Shapes
    /// `[n, rows * cols]`.
    pub fn images_u8_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_slice(
            &self.images,
            (self.len(), self.pixels()),
            device,
        )?)
    }

    /// The whole set as f32 intensities in `[0, 1]` (pixel / 255).
    ///
    /// # Shapes
    /// `[n, rows * cols]`.
    pub fn images_f32(&self, device: &Device) -> Result<Tensor> {
        let all: Vec<usize> = (0..self.len()).collect();
        self.gather_f32(&all, device)
    }

    /// The images at `indices`, as f32 intensities in `[0, 1]`.
    ///
    /// # Shapes
    /// `[indices.len(), rows * cols]`.
    ///
    /// # Errors
    /// [`DataError::Config`] for an index out of range.
    pub fn gather_f32(&self, indices: &[usize], device: &Device) -> Result<Tensor> {
        let per = self.pixels();
        let mut out = Vec::with_capacity(indices.len() * per);
        for &i in indices {
            let row = self.images.get(i * per..(i + 1) * per).ok_or_else(|| {
                DataError::Config(format!(
                    "image index {i} out of range for {} images",
                    self.len()
                ))
            })?;
            out.extend(row.iter().map(|&p| f32::from(p) / 255.0));
        }
        Ok(Tensor::from_vec(out, (indices.len(), per), device)?)
    }

    /// The labels as a `u32` tensor.
    ///
    /// # Shapes
    /// `[n]`.
    pub fn labels_tensor(&self, device: &Device) -> Result<Tensor> {
        let labels: Vec<u32> = self.labels.iter().map(|&l| u32::from(l)).collect();
        Ok(Tensor::from_vec(labels, self.len(), device)?)
    }

    /// The images at `indices`, in that order, as a new set.
    ///
    /// # Errors
    /// [`DataError::Config`] for an index out of range.
    pub fn subset(&self, indices: &[usize]) -> Result<Self> {
        let per = self.pixels();
        let mut images = Vec::with_capacity(indices.len() * per);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            let (Some(row), Some(&label)) =
                (self.images.get(i * per..(i + 1) * per), self.labels.get(i))
            else {
                return Err(DataError::Config(format!(
                    "image index {i} out of range for {} images",
                    self.len()
                )));
            };
            images.extend_from_slice(row);
            labels.push(label);
        }
        Self::new(images, labels, self.rows, self.cols)
    }

    /// Splits off the last `n_valid` images as a validation set: `(first n - n_valid, last
    /// n_valid)`. For MNIST, `split_last(10_000)` gives the usual 50k / 10k split.
    ///
    /// # Errors
    /// [`DataError::Config`] when `n_valid` exceeds the set.
    pub fn split_last(&self, n_valid: usize) -> Result<(Self, Self)> {
        let n = self.len();
        if n_valid > n {
            return Err(DataError::Config(format!(
                "validation split of {n_valid} images asked from a set of {n}"
            )));
        }
        let train: Vec<usize> = (0..n - n_valid).collect();
        let valid: Vec<usize> = (n - n_valid..n).collect();
        Ok((self.subset(&train)?, self.subset(&valid)?))
    }

    /// Splits off `n_valid` images chosen uniformly at random with `noise`: `(rest,
    /// validation)`, each in original order.
    ///
    /// # Errors
    /// [`DataError::Config`] when `n_valid` exceeds the set.
    pub fn split_random(
        &self,
        n_valid: usize,
        noise: &mut dyn NoiseSource,
    ) -> Result<(Self, Self)> {
        let n = self.len();
        if n_valid > n {
            return Err(DataError::Config(format!(
                "validation split of {n_valid} images asked from a set of {n}"
            )));
        }
        let perm = permutation(noise, n)?;
        let mut valid = perm[..n_valid].to_vec();
        let mut train = perm[n_valid..].to_vec();
        valid.sort_unstable();
        train.sort_unstable();
        Ok((self.subset(&train)?, self.subset(&valid)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vaekit_core::SeededNoise;

    fn set(n: usize) -> ImageSet {
        let images: Vec<u8> = (0..n * 4).map(|i| (i * 17 % 256) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        ImageSet::new(images, labels, 2, 2).unwrap()
    }

    #[test]
    fn tensors_and_statistics() -> Result<()> {
        let s = set(3);
        let x = s.images_f32(&Device::Cpu)?;
        assert_eq!(x.dims(), &[3, 4]);
        let v = x.to_vec2::<f32>()?;
        assert_eq!(v[1][0], f32::from(s.images_u8()[4]) / 255.0);
        let mean = s.images_u8().iter().map(|&p| f64::from(p)).sum::<f64>() / 12.0 / 255.0;
        assert!((s.mean_intensity() - mean).abs() < 1e-15);
        assert_eq!(s.label_counts(), vec![1, 1, 1]);
        assert_eq!(
            s.gather_f32(&[2, 0], &Device::Cpu)?.to_vec2::<f32>()?,
            vec![v[2].clone(), v[0].clone()]
        );
        assert!(s.gather_f32(&[3], &Device::Cpu).is_err());
        assert_eq!(
            s.labels_tensor(&Device::Cpu)?.to_vec1::<u32>()?,
            vec![0, 1, 2]
        );
        assert!(ImageSet::new(vec![0; 5], vec![0], 2, 2).is_err());
        Ok(())
    }

    #[test]
    fn splits_partition_the_set() -> Result<()> {
        let s = set(20);
        let (train, valid) = s.split_last(5)?;
        assert_eq!((train.len(), valid.len()), (15, 5));
        assert_eq!(valid.labels(), &[5, 6, 7, 8, 9]);
        assert!(s.split_last(21).is_err());
        let (a, b) = s.split_random(7, &mut SeededNoise::new(1))?;
        let (a2, b2) = s.split_random(7, &mut SeededNoise::new(1))?;
        assert_eq!((a.clone(), b.clone()), (a2, b2));
        assert_eq!((a.len(), b.len()), (13, 7));
        let mut all: Vec<Vec<u8>> = a
            .images_u8()
            .chunks(4)
            .chain(b.images_u8().chunks(4))
            .map(<[u8]>::to_vec)
            .collect();
        let mut orig: Vec<Vec<u8>> = s.images_u8().chunks(4).map(<[u8]>::to_vec).collect();
        all.sort();
        orig.sort();
        assert_eq!(all, orig);
        Ok(())
    }
}
