//! The request body: the snapshot's entries as a streamed tar, plus the Dockerfile when it is not
//! itself part of the context (see `dockerfile_in_tar` for what `COPY .` then sees).

use futures::TryStreamExt;
use http_body_util::BodyExt;

use super::daemon::RawBody;
use super::{tar_stream, ContextSnapshot, ExtraFile};

/// Name given to a Dockerfile that is not in the context (inline, outside the dir, or dockerignored).
pub const INJECTED_DOCKERFILE: &str = ".imagebuild.Dockerfile";

/// Where the Dockerfile sits in the tar, and the extra file needed to put it there.
///
/// A tar body has no separate Dockerfile channel and the daemon applies no .dockerignore to it, so an
/// injected Dockerfile is visible to `COPY . /x` as `/x/.imagebuild.Dockerfile`; Docker's own
/// client (BuildKit session transfer) would not show it. A Dockerfile inside the context and not
/// ignored is sent once, at its own path, exactly as Docker sends it.
pub fn dockerfile_in_tar(snap: &ContextSnapshot) -> (String, Option<ExtraFile>) {
    dockerfile_in_tar_with(snap, None)
}

/// [`dockerfile_in_tar`] for a build whose Dockerfile text differs from the snapshot's (FROM
/// images pinned by digest): that text is injected, since the copy in the context is the
/// unpinned one.
pub fn dockerfile_in_tar_with(
    snap: &ContextSnapshot,
    build_text: Option<&std::sync::Arc<Vec<u8>>>,
) -> (String, Option<ExtraFile>) {
    match (&snap.dockerfile_in_context, build_text) {
        (Some(rel), None) => return (rel.clone(), None),
        (Some(rel), Some(text)) if text.as_slice() == snap.dockerfile_contents.as_slice() => {
            return (rel.clone(), None)
        }
        _ => {}
    }
    let taken = |p: &str| snap.entries.iter().any(|e| e.path == p);
    let mut name = INJECTED_DOCKERFILE.to_string();
    let mut n = 1;
    while taken(&name) {
        name = format!(".imagebuild.{n}.Dockerfile");
        n += 1;
    }
    let extra = ExtraFile {
        path: name.clone(),
        contents: build_text
            .unwrap_or(&snap.dockerfile_contents)
            .as_ref()
            .clone(),
        exec: false,
    };
    (name, Some(extra))
}

/// The streamed tar body (gzip for network daemons, plain for a local socket, where compressing
/// would only cost CPU) and the Dockerfile path to pass as `dockerfile`.
pub(crate) fn body(
    snap: &ContextSnapshot,
    build_text: Option<&std::sync::Arc<Vec<u8>>>,
    gzip: bool,
) -> (String, RawBody) {
    let (name, extra) = dockerfile_in_tar_with(snap, build_text);
    let stream = tar_stream(snap, extra.into_iter().collect(), gzip);
    let body = http_body_util::StreamBody::new(stream.map_ok(hyper::body::Frame::data));
    (name, body.boxed_unsync())
}
