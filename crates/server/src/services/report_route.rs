//! The Client service as a node serves it: [`ClientRoutes`], whose Report method reads its
//! request with [`ReportWire`] in place of the generated prost codec.
//!
//! Reports are the RPC a node receives by the ten thousand a second. The generated codec
//! decodes each into a `ReportRequest` (an allocation per delta key and latency list, the delta
//! list grown a push at a time) that the handler then converts again; [`ReportWire`] reads the
//! request's bytes once, straight into a validated `Report`, with keys shared from a per-thread
//! cache. Everything else about the call is unchanged: the same path, message size limits,
//! authorization and refusals, answered by the same handler; malformed bytes are refused as
//! `INVALID_ARGUMENT` naming the rule prost's decode would have broken (the generated codec
//! answered `INTERNAL`). Every other method goes to the generated server.

use std::convert::Infallible;
use std::task::{Context, Poll};

use prost::Message;
use prost::bytes::Buf;
use switchyard_proto::client::{self as pb, client_server::ClientServer};
use switchyard_proto::convert::{ReportWire, ReportWireError, status_from_validation};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, Bytes, Service, StdError, http};
use tonic::server::{NamedService, UnaryService};
use tonic::{Request, Response, Status};

use super::ClientService;

/// The gRPC path of the Report method.
pub const REPORT_PATH: &str = "/switchyard.client.v1.Client/Report";

/// The Client service: Report through [`ReportWire`], the rest through the generated server.
#[derive(Debug, Clone)]
pub struct ClientRoutes {
    generated: ClientServer<ClientService>,
    service: ClientService,
    /// The largest message decoded or encoded, in bytes (as the generated server is set).
    message_bytes_max: usize,
}

impl ClientRoutes {
    /// Serves `service`, refusing messages over `message_bytes_max` bytes either way.
    pub fn new(service: ClientService, message_bytes_max: usize) -> Self {
        Self {
            generated: ClientServer::new(service.clone())
                .max_decoding_message_size(message_bytes_max)
                .max_encoding_message_size(message_bytes_max),
            service,
            message_bytes_max,
        }
    }
}

impl NamedService for ClientRoutes {
    const NAME: &'static str = <ClientServer<ClientService> as NamedService>::NAME;
}

impl<B> Service<http::Request<B>> for ClientRoutes
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != REPORT_PATH {
            return self.generated.call(request);
        }
        let method = ReportMethod(self.service.clone());
        let limit = Some(self.message_bytes_max);
        Box::pin(async move {
            let mut grpc =
                tonic::server::Grpc::new(ReportCodec).apply_max_message_size_config(limit, limit);
            Ok(grpc.unary(method, request).await)
        })
    }
}

/// The Report method over a request's raw bytes.
struct ReportMethod(ClientService);

impl UnaryService<Bytes> for ReportMethod {
    type Response = pb::ReportResponse;
    type Future = BoxFuture<Response<pb::ReportResponse>, Status>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move {
            service.authorize(&request)?;
            let bytes = request.into_inner();
            let wire = ReportWire::parse(&bytes).map_err(|e| wire_status(&e))?;
            service
                .accept_report(wire.instance, wire.deltas, || {
                    wire.decode().map_err(|e| wire_status(&e))
                })
                .await
        })
    }
}

/// The status a refused report's bytes are answered with: `INVALID_ARGUMENT` either way.
fn wire_status(error: &ReportWireError) -> Status {
    match error {
        ReportWireError::Invalid(e) => status_from_validation(e),
        ReportWireError::Malformed(_) => Status::invalid_argument(error.to_string()),
    }
}

/// Report requests as bytes (read by [`ReportWire`]), responses through prost.
#[derive(Debug, Clone, Copy, Default)]
struct ReportCodec;

impl Codec for ReportCodec {
    type Encode = pb::ReportResponse;
    type Decode = Bytes;
    type Encoder = ResponseEncoder;
    type Decoder = RequestBytes;

    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestBytes
    }
}

#[derive(Debug, Clone, Copy)]
struct ResponseEncoder;

impl Encoder for ResponseEncoder {
    type Item = pb::ReportResponse;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("cannot encode a ReportResponse: {e}")))
    }
}

/// A request message's bytes, taken from the frame without a copy.
#[derive(Debug, Clone, Copy)]
struct RequestBytes;

impl Decoder for RequestBytes {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
