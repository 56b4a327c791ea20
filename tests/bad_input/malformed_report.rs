//! Report bytes no generated client would send: a node reads Report requests with its own
//! decoder (`ReportWire`), and refuses bytes that are not a well-formed `ReportRequest` with
//! `InvalidArgument` naming the rule broken, changing nothing.

use prost::Message;
use prost::bytes::BufMut;
use switchyard_proto::client as pb;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Request, Status};

use super::support::{Cluster, admin, eventually};
use super::{ELECTION, delta, observe, refused};

/// Sends `bytes` as the body of a Report call.
async fn report_bytes(
    channel: &Channel,
    bytes: Vec<u8>,
) -> Result<tonic::Response<pb::ReportResponse>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("channel ready");
    let path = PathAndQuery::from_static("/switchyard.client.v1.Client/Report");
    grpc.unary(Request::new(bytes), path, RawCodec).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_report_bytes_are_refused_by_name_and_change_nothing() {
    let cluster = Cluster::start(1, &[]);
    cluster.wait_leader(ELECTION).await;
    let addr = cluster.nodes[&1].grpc.clone();
    let mut admin = admin(&addr).await;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let valid = pb::ReportRequest {
        instance: "i-1".into(),
        deltas: vec![delta("fleet/a", 1, 0)],
    }
    .encode_to_vec();
    let before = observe(&mut admin).await;

    let mut cut = valid.clone();
    cut.pop();
    let mut not_utf8 = vec![0x0a, 0x02, 0xff, 0xfe];
    not_utf8.extend(&valid);
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("a delta cut short", cut, "buffer underflow"),
        ("an instance that is not UTF-8", not_utf8, "UTF-8"),
        ("field number 0", vec![0x00], "tag value: 0"),
        ("a varint of 11 bytes", vec![0xff; 11], "invalid varint"),
    ];
    for (what, bytes, rule) in cases {
        let result = report_bytes(&channel, bytes).await;
        if let Err(status) = &result {
            assert!(
                status.message().contains("malformed ReportRequest"),
                "{what}: {status:?}"
            );
        }
        refused(
            &mut admin,
            &before,
            what,
            result,
            Code::InvalidArgument,
            rule,
        )
        .await;
    }
    // The raw path itself works: the same bytes, whole, are accepted and applied.
    let accepted = report_bytes(&channel, valid).await.expect("accepted");
    assert_eq!(accepted.get_ref().accepted_deltas, 1);
    eventually(ELECTION, "the accepted report applied", || {
        let mut admin = admin.clone();
        async move { (!observe(&mut admin).await.breakers.is_empty()).then_some(()) }
    })
    .await;
}

/// Request bytes as given, responses through prost.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = pb::ReportResponse;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = pb::ReportResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        pb::ReportResponse::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}
