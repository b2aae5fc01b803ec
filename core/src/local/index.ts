/**
 * Local mode's object source: Kubernetes manifests in a folder instead of a cluster (setting `source.folder`,
 * flag `--local DIR`). See `FolderSource`.
 */
export {
  FolderSource,
  loadManifestFolder,
  displayPath,
  type FolderSourceOptions,
  type FolderLoadResult,
  type FolderChangeListener,
  type FolderLoadListener,
  type FolderSecrets,
} from './folder-source.js';
export { parseManifestText, type ManifestProblem, type ManifestObject, type ParsedManifestFile } from './manifest-parser.js';
export { LOCAL_KINDS, type LocalKind } from './manifest-schema.js';
