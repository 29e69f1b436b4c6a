//! Remote CSV and JSON sources read once. DataFusion reads a text file twice, once to infer
//! its columns and once for its rows, and each read of a remote file is a download: so the
//! files of a remote text source are copied with one read each into the run's scratch folder
//! (removed when the run ends) and loaded from there.

use std::path::{Path, PathBuf};

use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SessionState;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use tokio::io::AsyncWriteExt;

use crate::store::sources;

/// Copy the files at remote `location` into `folder` (listing order kept in their names), and
/// return the location that reads the copies.
pub(super) async fn stage(
    state: &SessionState,
    location: &str,
    extension: &str,
    folder: &Path,
) -> Result<String, DataFusionError> {
    let (_, files) = sources::fingerprint(state, location, extension, false, None).await?;
    let url = ListingTableUrl::parse(location)?;
    let store = state.runtime_env().object_store(&url)?;
    tokio::fs::create_dir_all(folder).await?;
    for (i, file) in files.iter().enumerate() {
        let name = file.location.filename().unwrap_or("file");
        let path: PathBuf = folder.join(format!("{i:06}-{name}"));
        let mut out = tokio::fs::File::create(&path).await?;
        let mut body = store.get(&file.location).await?.into_stream();
        while let Some(chunk) = body.next().await {
            out.write_all(&chunk?).await?;
        }
        out.flush().await?;
    }
    Ok(format!("{}/*", folder.display()))
}
