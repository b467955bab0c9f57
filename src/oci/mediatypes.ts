export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociLayerNondistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerZstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export type MediaTypeName = (typeof MediaType)[keyof typeof MediaType];

export type Compression = 'none' | 'gzip' | 'zstd';

/** Which manifest family an image is written in: Docker v2 schema 2 or OCI. */
export type ManifestFlavor = 'docker' | 'oci';

const SINGLE_MANIFESTS = new Set<string>([MediaType.ociManifest, MediaType.dockerManifest]);
const INDEXES = new Set<string>([MediaType.ociIndex, MediaType.dockerManifestList]);

export function isImageManifest(mediaType: string | undefined): boolean {
  return mediaType !== undefined && SINGLE_MANIFESTS.has(mediaType);
}

export function isImageIndex(mediaType: string | undefined): boolean {
  return mediaType !== undefined && INDEXES.has(mediaType);
}

/** Foreign / non-distributable layers live outside the registry; kiln passes their descriptors through. */
export function isForeignLayer(mediaType: string): boolean {
  return mediaType === MediaType.dockerForeignLayer || mediaType.startsWith('application/vnd.oci.image.layer.nondistributable.');
}

export function isLayerMediaType(mediaType: string): boolean {
  return mediaType.startsWith('application/vnd.oci.image.layer.') || mediaType.startsWith('application/vnd.docker.image.rootfs.');
}

export function layerCompression(mediaType: string): Compression {
  if (mediaType.endsWith('+zstd') || mediaType.endsWith('.zstd')) return 'zstd';
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.gzip') || mediaType === MediaType.dockerForeignLayer) return 'gzip';
  return 'none';
}

export function layerMediaType(flavor: ManifestFlavor, compression: Compression): string {
  if (flavor === 'docker') {
    return compression === 'gzip' ? MediaType.dockerLayerGzip : compression === 'zstd' ? MediaType.dockerLayerZstd : MediaType.dockerLayer;
  }
  return compression === 'gzip' ? MediaType.ociLayerGzip : compression === 'zstd' ? MediaType.ociLayerZstd : MediaType.ociLayer;
}

export function manifestMediaType(flavor: ManifestFlavor): string {
  return flavor === 'docker' ? MediaType.dockerManifest : MediaType.ociManifest;
}

export function configMediaType(flavor: ManifestFlavor): string {
  return flavor === 'docker' ? MediaType.dockerConfig : MediaType.ociConfig;
}

export function flavorOfManifest(mediaType: string): ManifestFlavor {
  return mediaType === MediaType.dockerManifest || mediaType === MediaType.dockerManifestList ? 'docker' : 'oci';
}
