use alloc::vec::Vec;

use crate::{DType, Element, Shape, TensorError};
use half::{bf16, f16};

/// An owned row-major tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor<T: Element> {
    shape: Shape,
    data: Vec<T>,
}

/// A borrowed row-major tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorView<'a, T: Element> {
    shape: &'a Shape,
    data: &'a [T],
}

fn check_len(shape: &Shape, len: usize) -> Result<(), TensorError> {
    if shape.numel() == len {
        Ok(())
    } else {
        Err(TensorError::LengthMismatch { shape: shape.dims().to_vec(), expected: shape.numel(), got: len })
    }
}

impl<T: Element> Tensor<T> {
    /// A tensor over `data`, which must hold exactly `shape.numel()` elements.
    pub fn new(shape: Shape, data: Vec<T>) -> Result<Self, TensorError> {
        check_len(&shape, data.len())?;
        Ok(Tensor { shape, data })
    }

    /// A tensor from dimensions and data in one step.
    pub fn from_vec(dims: impl Into<Vec<usize>>, data: Vec<T>) -> Result<Self, TensorError> {
        Self::new(Shape::new(dims)?, data)
    }

    /// A tensor of zeros.
    pub fn zeros(dims: impl Into<Vec<usize>>) -> Result<Self, TensorError> {
        let shape = Shape::new(dims)?;
        let data = alloc::vec![T::default(); shape.numel()];
        Ok(Tensor { shape, data })
    }

    /// The tensor's shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The tensor's dimensions, outermost first.
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// The elements in row-major order, mutably.
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// Gives up the shape and returns the elements.
    pub fn into_data(self) -> Vec<T> {
        self.data
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Borrows the tensor.
    pub fn view(&self) -> TensorView<'_, T> {
        TensorView { shape: &self.shape, data: &self.data }
    }

    /// The same elements under another shape with the same element count.
    pub fn reshape(self, dims: impl Into<Vec<usize>>) -> Result<Self, TensorError> {
        Self::new(Shape::new(dims)?, self.data)
    }

    /// Row `index` of the tensor seen as a matrix (see [`Shape::as_matrix`]).
    pub fn row(&self, index: usize) -> Result<&[T], TensorError> {
        self.view().row(index)
    }

    /// Converts every element to another element type (through `f32`).
    pub fn cast<U: Element>(&self) -> Tensor<U> {
        Tensor { shape: self.shape.clone(), data: self.data.iter().map(|&x| U::from_f32(x.to_f32())).collect() }
    }

    /// The elements as little-endian bytes, as safetensors stores them.
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.data)
    }

    /// A tensor from little-endian bytes; copies, so `bytes` need not be aligned.
    pub fn from_bytes(dims: impl Into<Vec<usize>>, bytes: &[u8]) -> Result<Self, TensorError> {
        let size = core::mem::size_of::<T>();
        if !bytes.len().is_multiple_of(size) {
            return Err(TensorError::ByteLength { len: bytes.len(), dtype: T::DTYPE.name() });
        }
        Self::from_vec(dims, bytemuck::pod_collect_to_vec(bytes))
    }
}

impl<'a, T: Element> TensorView<'a, T> {
    /// A view over `data`, which must hold exactly `shape.numel()` elements.
    pub fn new(shape: &'a Shape, data: &'a [T]) -> Result<Self, TensorError> {
        check_len(shape, data.len())?;
        Ok(TensorView { shape, data })
    }

    /// The view's shape.
    pub fn shape(&self) -> &'a Shape {
        self.shape
    }

    /// The view's dimensions.
    pub fn dims(&self) -> &'a [usize] {
        self.shape.dims()
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &'a [T] {
        self.data
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Row `index` of the view seen as a matrix (see [`Shape::as_matrix`]).
    pub fn row(&self, index: usize) -> Result<&'a [T], TensorError> {
        let (rows, cols) = self.shape.as_matrix();
        if index >= rows {
            return Err(TensorError::IndexOutOfRange { index, len: rows });
        }
        Ok(&self.data[index * cols..(index + 1) * cols])
    }

    /// Copies the view into an owned tensor.
    pub fn to_tensor(&self) -> Tensor<T> {
        Tensor { shape: self.shape.clone(), data: self.data.to_vec() }
    }
}

/// A tensor of whichever supported dtype a file held.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyTensor {
    F32(Tensor<f32>),
    F16(Tensor<f16>),
    BF16(Tensor<bf16>),
}

impl AnyTensor {
    /// A tensor of `dtype` from little-endian bytes.
    pub fn from_bytes(dtype: DType, dims: impl Into<Vec<usize>>, bytes: &[u8]) -> Result<Self, TensorError> {
        Ok(match dtype {
            DType::F32 => AnyTensor::F32(Tensor::from_bytes(dims, bytes)?),
            DType::F16 => AnyTensor::F16(Tensor::from_bytes(dims, bytes)?),
            DType::BF16 => AnyTensor::BF16(Tensor::from_bytes(dims, bytes)?),
        })
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            AnyTensor::F32(_) => DType::F32,
            AnyTensor::F16(_) => DType::F16,
            AnyTensor::BF16(_) => DType::BF16,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        match self {
            AnyTensor::F32(t) => t.shape(),
            AnyTensor::F16(t) => t.shape(),
            AnyTensor::BF16(t) => t.shape(),
        }
    }

    /// Widens to `f32` (exact).
    pub fn to_f32(&self) -> Tensor<f32> {
        match self {
            AnyTensor::F32(t) => t.clone(),
            AnyTensor::F16(t) => t.cast(),
            AnyTensor::BF16(t) => t.cast(),
        }
    }

    /// Little-endian bytes, as safetensors stores them.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            AnyTensor::F32(t) => t.as_bytes(),
            AnyTensor::F16(t) => t.as_bytes(),
            AnyTensor::BF16(t) => t.as_bytes(),
        }
    }

    /// Narrows an `f32` tensor to `dtype` (round to nearest even).
    pub fn from_f32(tensor: &Tensor<f32>, dtype: DType) -> Self {
        match dtype {
            DType::F32 => AnyTensor::F32(tensor.clone()),
            DType::F16 => AnyTensor::F16(tensor.cast()),
            DType::BF16 => AnyTensor::BF16(tensor.cast()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn length_must_match_shape() {
        assert!(Tensor::<f32>::from_vec([2, 3], vec![0.0; 5]).is_err());
        let t = Tensor::<f32>::from_vec([2, 3], vec![1., 2., 3., 4., 5., 6.]).unwrap();
        assert_eq!(t.row(1).unwrap(), &[4., 5., 6.]);
        assert!(t.row(2).is_err());
    }

    #[test]
    fn bytes_round_trip_unaligned() {
        let t = Tensor::<bf16>::from_vec([3], vec![bf16::from_f32(1.5), bf16::ONE, bf16::ZERO]).unwrap();
        let mut bytes = vec![0u8];
        bytes.extend_from_slice(t.as_bytes());
        let back = Tensor::<bf16>::from_bytes([3], &bytes[1..]).unwrap();
        assert_eq!(back, t);
        assert!(Tensor::<f32>::from_bytes([1], &[0u8; 3]).is_err());
    }

    #[test]
    fn casts_round_to_nearest() {
        let t = Tensor::<f32>::from_vec([2], vec![1.0, 1.0 + 1.0 / 512.0]).unwrap();
        let b: Tensor<bf16> = t.cast();
        assert_eq!(b.cast::<f32>().data(), &[1.0, 1.0]);
        let any = AnyTensor::from_f32(&t, DType::F16);
        assert_eq!(any.dtype(), DType::F16);
        assert_eq!(any.to_f32().data(), t.data());
    }
}
