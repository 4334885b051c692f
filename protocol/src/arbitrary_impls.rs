//! `Arbitrary` for messages, so fuzz targets get structured input.

use arbitrary::{Arbitrary, Result, Unstructured};
use bytes::Bytes;

use crate::frame::{Header, HeaderValue, Message, StrBytes};

impl<'a> Arbitrary<'a> for StrBytes {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Self::from(String::arbitrary(u)?))
    }
}

impl<'a> Arbitrary<'a> for HeaderValue {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(match u.int_in_range(0u8..=9)? {
            0 => Self::Bool(true),
            1 => Self::Bool(false),
            2 => Self::Byte(u.arbitrary()?),
            3 => Self::Int16(u.arbitrary()?),
            4 => Self::Int32(u.arbitrary()?),
            5 => Self::Int64(u.arbitrary()?),
            6 => Self::Bytes(Bytes::from(Vec::<u8>::arbitrary(u)?)),
            7 => Self::String(u.arbitrary()?),
            8 => Self::Timestamp(u.arbitrary()?),
            _ => Self::Uuid(u.arbitrary()?),
        })
    }
}

impl<'a> Arbitrary<'a> for Header {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Self {
            name: u.arbitrary()?,
            value: u.arbitrary()?,
        })
    }
}

impl<'a> Arbitrary<'a> for Message {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Self {
            headers: u.arbitrary()?,
            payload: Bytes::from(Vec::<u8>::arbitrary(u)?),
        })
    }
}
