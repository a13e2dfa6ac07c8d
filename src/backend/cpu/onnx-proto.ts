// A minimal ONNX protobuf writer: just the messages ctx needs to build its own graphs.
//
// Protobuf wire format in one paragraph: a message is a list of fields; each field starts with a
// varint key = (field number << 3) | wire type. Wire type 0 = varint (int32/int64/enum), 2 =
// length-delimited (strings, bytes, nested messages, packed repeated numbers), 5 = 32-bit (float).
// Varints are little-endian base-128 with the high bit meaning "more bytes follow"; negative
// int64 values take 10 bytes (two's complement). Field numbers below are those of onnx/onnx.proto.

/** TensorProto.DataType values used by ctx. */
export const DT = {
  float: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  double: 11,
} as const;
export type DataTypeName = keyof typeof DT;

/** Growable byte buffer with protobuf field writers. */
class Writer {
  private buf = new Uint8Array(256);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  private varint(v: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(v));
    this.reserve(10);
    while (x >= 0x80n) {
      this.buf[this.len++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.len++] = Number(x);
  }

  private key(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, v: number | bigint): void {
    this.key(field, 0);
    this.varint(v);
  }

  float(field: number, v: number): void {
    this.key(field, 5);
    this.reserve(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, v, true);
    this.len += 4;
  }

  raw(field: number, data: Uint8Array): void {
    this.key(field, 2);
    this.varint(data.length);
    this.reserve(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  string(field: number, s: string): void {
    this.raw(field, new TextEncoder().encode(s));
  }

  message(field: number, m: Writer): void {
    this.raw(field, m.bytes());
  }

  packedInts(field: number, values: ArrayLike<number>): void {
    const w = new Writer();
    for (let i = 0; i < values.length; i++) w.varint(values[i]);
    this.raw(field, w.bytes());
  }

  packedFloats(field: number, values: ArrayLike<number>): void {
    const f = Float32Array.from(values);
    this.raw(field, new Uint8Array(f.buffer));
  }
}

/** Where a tensor's bytes live: inline (small constants) or in the external-data file. */
export type TensorData =
  | { kind: 'raw'; bytes: Uint8Array }
  | { kind: 'external'; location: string; offset: number; length: number };

export interface TensorSpec {
  name: string;
  dataType: DataTypeName;
  dims: number[];
  data: TensorData;
}

export type AttrValue =
  | { kind: 'int'; v: number }
  | { kind: 'float'; v: number }
  | { kind: 'string'; v: string }
  | { kind: 'ints'; v: number[] }
  | { kind: 'floats'; v: number[] }
  | { kind: 'tensor'; v: TensorSpec };

export interface NodeSpec {
  opType: string;
  domain?: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attrs: Record<string, AttrValue>;
}

/** A graph input/output: element type and shape, where a string is a symbolic dimension. */
export interface ValueSpec {
  name: string;
  dataType: DataTypeName;
  shape: Array<number | string>;
}

export interface ModelSpec {
  graphName: string;
  nodes: NodeSpec[];
  initializers: TensorSpec[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  /** e.g. [{domain: '', version: 21}, {domain: 'com.microsoft', version: 1}] */
  opsets: Array<{ domain: string; version: number }>;
}

function tensorProto(t: TensorSpec): Writer {
  const w = new Writer();
  for (const d of t.dims) w.int(1, d); // dims (unpacked is accepted by every parser)
  w.int(2, DT[t.dataType]); // data_type
  w.string(8, t.name); // name
  if (t.data.kind === 'raw') {
    w.raw(9, t.data.bytes); // raw_data
  } else {
    const entry = (k: string, v: string) => {
      const e = new Writer();
      e.string(1, k);
      e.string(2, v);
      return e;
    };
    w.message(13, entry('location', t.data.location)); // external_data
    w.message(13, entry('offset', String(t.data.offset)));
    w.message(13, entry('length', String(t.data.length)));
    w.int(14, 1); // data_location = EXTERNAL
  }
  return w;
}

const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

function attributeProto(name: string, a: AttrValue): Writer {
  const w = new Writer();
  w.string(1, name);
  w.int(20, ATTR_TYPE[a.kind]); // type
  switch (a.kind) {
    case 'float':
      w.float(2, a.v);
      break;
    case 'int':
      w.int(3, a.v);
      break;
    case 'string':
      w.string(4, a.v);
      break;
    case 'tensor':
      w.message(5, tensorProto(a.v));
      break;
    case 'floats':
      w.packedFloats(7, a.v);
      break;
    case 'ints':
      w.packedInts(8, a.v);
      break;
  }
  return w;
}

function valueInfoProto(v: ValueSpec): Writer {
  const shape = new Writer();
  for (const d of v.shape) {
    const dim = new Writer();
    if (typeof d === 'number') dim.int(1, d); // dim_value
    else dim.string(2, d); // dim_param
    shape.message(1, dim);
  }
  const tensorType = new Writer();
  tensorType.int(1, DT[v.dataType]); // elem_type
  tensorType.message(2, shape);
  const type = new Writer();
  type.message(1, tensorType); // TypeProto.tensor_type
  const w = new Writer();
  w.string(1, v.name);
  w.message(2, type);
  return w;
}

function nodeProto(n: NodeSpec): Writer {
  const w = new Writer();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, a] of Object.entries(n.attrs)) w.message(5, attributeProto(k, a));
  if (n.domain) w.string(7, n.domain);
  return w;
}

/** Serialises a ModelProto (IR version 10). */
export function encodeModel(m: ModelSpec): Uint8Array {
  const g = new Writer();
  for (const n of m.nodes) g.message(1, nodeProto(n));
  g.string(2, m.graphName);
  for (const t of m.initializers) g.message(5, tensorProto(t));
  for (const i of m.inputs) g.message(11, valueInfoProto(i));
  for (const o of m.outputs) g.message(12, valueInfoProto(o));
  const w = new Writer();
  w.int(1, 10); // ir_version
  w.string(2, 'ctx'); // producer_name
  w.message(7, g); // graph
  for (const o of m.opsets) {
    const op = new Writer();
    if (o.domain) op.string(1, o.domain);
    op.int(2, o.version);
    w.message(8, op); // opset_import
  }
  return w.bytes();
}
