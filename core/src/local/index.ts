/**
 * Local mode's object source: Kubernetes manifests in a folder instead of a cluster (setting `source.folder`,
 * flag `--local DIR`). See `FolderSource`.
 */
export { FolderSource, loadManifestFolder, type FolderLoadResult } from './folder-source.js';
