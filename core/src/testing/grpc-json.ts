/**
 * Serializers for gRPC test services defined without .proto files: messages are JSON. Spread into each method of
 * a `@grpc/grpc-js` `ServiceDefinition` (`{ path, requestStream, responseStream, ...grpcJsonCodec }`).
 */
export const grpcJsonCodec = {
  requestSerialize: (v: unknown): Buffer => Buffer.from(JSON.stringify(v)),
  requestDeserialize: (b: Buffer): unknown => JSON.parse(b.toString()) as unknown,
  responseSerialize: (v: unknown): Buffer => Buffer.from(JSON.stringify(v)),
  responseDeserialize: (b: Buffer): unknown => JSON.parse(b.toString()) as unknown,
} as const;
