use alloc::vec::Vec;

use crate::TensorError;

/// The dimensions of a row-major tensor, outermost first. A rank-0 shape is a scalar.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape {
    dims: Vec<usize>,
}

impl Shape {
    /// A shape from its dimensions; fails if the element count overflows `usize`.
    pub fn new(dims: impl Into<Vec<usize>>) -> Result<Self, TensorError> {
        let dims = dims.into();
        checked_numel(&dims).ok_or_else(|| TensorError::TooLarge(dims.clone()))?;
        Ok(Shape { dims })
    }

    /// The dimensions, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// Number of elements (1 for a scalar). Never overflows: checked at construction.
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }

    /// Row-major strides in elements.
    pub fn strides(&self) -> Vec<usize> {
        let mut strides = alloc::vec![1; self.dims.len()];
        for axis in (0..self.dims.len().saturating_sub(1)).rev() {
            strides[axis] = strides[axis + 1] * self.dims[axis + 1];
        }
        strides
    }

    /// Splits the shape into (rows, row length): all leading axes times the last one.
    /// A scalar is one row of one element.
    pub fn as_matrix(&self) -> (usize, usize) {
        match self.dims.split_last() {
            Some((&cols, lead)) => (lead.iter().product(), cols),
            None => (1, 1),
        }
    }
}

impl TryFrom<&[usize]> for Shape {
    type Error = TensorError;
    fn try_from(dims: &[usize]) -> Result<Self, TensorError> {
        Shape::new(dims.to_vec())
    }
}

fn checked_numel(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_and_numel() {
        let s = Shape::new([2, 3, 4]).unwrap();
        assert_eq!(s.numel(), 24);
        assert_eq!(s.strides(), [12, 4, 1]);
        assert_eq!(s.as_matrix(), (6, 4));
        let scalar = Shape::new([]).unwrap();
        assert_eq!(scalar.numel(), 1);
        assert_eq!(scalar.as_matrix(), (1, 1));
    }

    #[test]
    fn overflow_is_an_error() {
        assert!(matches!(Shape::new([usize::MAX, 2]), Err(TensorError::TooLarge(_))));
    }
}
