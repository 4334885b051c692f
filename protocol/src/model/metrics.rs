//! Component metrics: PutComponentMetric (`protocol.md` §7.5).
//!
//! See [`crate::model`] for how optional and required members, unions and
//! enums behave.

use serde::Serialize;

use super::{MetricUnitType, Shape, ShapeError, missing};

/// Publishes metrics of the caller.
///
/// Structure `aws.greengrass#PutComponentMetricRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutComponentMetricRequest {
    /// Required. The metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<Metric>>,
}

deserialize_object!(PutComponentMetricRequest {
    "metrics" => metrics: opt,
});

impl Shape for PutComponentMetricRequest {
    const ID: &'static str = "aws.greengrass#PutComponentMetricRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.metrics.is_none() {
            return Err(missing("PutComponentMetricRequest", "metrics"));
        }
        for v in self.metrics.iter().flat_map(|m| m.iter()) {
            v.validate()?;
        }
        Ok(())
    }
}

/// One metric value.
///
/// Structure `aws.greengrass#Metric`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    /// Required. The metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Required. Its unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<MetricUnitType>,
    /// Required. Its value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

deserialize_object!(Metric {
    "name" => name: opt,
    "unit" => unit: opt,
    "value" => value: opt,
});

impl Shape for Metric {
    const ID: &'static str = "aws.greengrass#Metric";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.name.is_none() {
            return Err(missing("Metric", "name"));
        }
        if self.unit.is_none() {
            return Err(missing("Metric", "unit"));
        }
        if self.value.is_none() {
            return Err(missing("Metric", "value"));
        }
        Ok(())
    }
}

/// Empty answer to PutComponentMetric.
///
/// Structure `aws.greengrass#PutComponentMetricResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PutComponentMetricResponse {}

deserialize_object!(PutComponentMetricResponse {});

impl Shape for PutComponentMetricResponse {
    const ID: &'static str = "aws.greengrass#PutComponentMetricResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}
