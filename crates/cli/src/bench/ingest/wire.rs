//! The bench's instances put their reports on the wire without the generated client.
//!
//! An instance sends the same report over and over with new counts. Built afresh each time,
//! a report of 20 breakers cost 41 allocations (the instance id, every key, every latency list)
//! and their frees, about a quarter of the generator's CPU, on the two cores it shares with the
//! three nodes it measures. A [`ReportTemplate`] is built once per instance; each report
//! writes the counts into it and encodes it into one buffer, sent as it is by [`RawReport`].

use prost::Message;
use prost::bytes::BufMut;
use switchyard_proto::client::{ReportRequest, ReportResponse};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::instance::report;
use super::pacer::Evidence;

/// One instance's report, built once, encoded with new counts each time.
#[derive(Debug)]
pub struct ReportTemplate(ReportRequest);

impl ReportTemplate {
    /// The report of `instance` over `breakers` breakers.
    pub fn new(instance: u32, breakers: u32) -> Self {
        Self(report(instance, breakers, Evidence::of_interval(0)))
    }

    /// The encoded report carrying `evidence`: the bytes of
    /// `report(instance, breakers, evidence)`.
    pub fn encode(&mut self, evidence: Evidence) -> Vec<u8> {
        for delta in &mut self.0.deltas {
            delta.calls = evidence.calls;
            delta.failures = evidence.failures;
            for bucket in &mut delta.latency {
                bucket.count = evidence.latency_count;
            }
        }
        self.0.encode_to_vec()
    }
}

/// Sends encoded Report bytes on `channel`.
pub async fn send(channel: &Channel, bytes: Vec<u8>) -> Result<Response<ReportResponse>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path = PathAndQuery::from_static("/switchyard.client.v1.Client/Report");
    grpc.unary(Request::new(bytes), path, RawReport).await
}

/// Request bytes as given, responses through prost.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawReport;

impl Codec for RawReport {
    type Encode = Vec<u8>;
    type Decode = ReportResponse;
    type Encoder = RawReport;
    type Decoder = RawReport;

    fn encoder(&mut self) -> Self::Encoder {
        RawReport
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawReport
    }
}

impl Encoder for RawReport {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawReport {
    type Item = ReportResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        ReportResponse::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_encodes_the_bytes_of_a_report_built_afresh() {
        let mut template = ReportTemplate::new(42, 20);
        let mut evidence = Evidence::default();
        for k in 0..25 {
            // Sums of intervals: counts that grow, failures now and then.
            evidence.add(Evidence::of_interval(k));
            assert_eq!(
                template.encode(evidence),
                report(42, 20, evidence).encode_to_vec(),
                "interval {k}"
            );
        }
    }
}
