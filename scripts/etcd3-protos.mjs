// etcd3 builds its gRPC client from .proto files it reads next to its own sources when
// it is imported (TESTBED.md trap): a bundle, let alone a single executable, has no such
// files. This esbuild plugin parses them at build time, with the protobufjs copy that
// etcd3's proto-loader uses, and puts the parsed definitions into the bundle in place of
// the file read (`loadSync(path)` becomes `fromJSON(definitions)`, same options). Nothing
// is read from disk or from SEA assets at run time.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const LOAD_CALL = /\(0, proto_loader_1\.loadSync\)\(`\$\{__dirname\}\/\.\.\/proto\/rpc\.proto`,/;

/** The protobufjs JSON of etcd3's rpc.proto (and the kv/auth protos it imports). */
export function etcd3ProtoJson(connectionPoolPath) {
  const protoLoader = createRequire(connectionPoolPath).resolve('@grpc/proto-loader');
  const protobuf = createRequire(protoLoader)('protobufjs');
  // keepCase is the one parse option etcd3 passes; the others only shape decoding and
  // still reach fromJSON through the untouched options object.
  const root = new protobuf.Root().loadSync(join(dirname(connectionPoolPath), '..', 'proto', 'rpc.proto'), { keepCase: true });
  root.resolveAll();
  return root.toJSON();
}

export function inlineEtcd3Protos() {
  return {
    name: 'inline-etcd3-protos',
    setup(build) {
      build.onLoad({ filter: /[\\/]etcd3[\\/]lib[\\/]connection-pool\.js$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        if (!LOAD_CALL.test(source)) {
          throw new Error(`${args.path}: etcd3 no longer loads proto/rpc.proto as expected; update scripts/etcd3-protos.mjs`);
        }
        const json = JSON.stringify(etcd3ProtoJson(args.path));
        return { contents: source.replace(LOAD_CALL, `(0, proto_loader_1.fromJSON)(${json},`), loader: 'js', resolveDir: dirname(args.path) };
      });
    },
  };
}
