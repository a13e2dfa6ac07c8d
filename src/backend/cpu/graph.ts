// A small builder for ONNX graphs: name inputs, chain operators, declare outputs, serialise.
//
//   const g = new Graph('demo');
//   const x = g.input('x', 'float', ['n', 64]);
//   const y = g.op('Relu', [g.op('MatMul', [x, g.weight(...)])]);
//   g.output(y, 'y', 'float', ['n', 32]);
//   const bytes = g.encode();
//
// Values are plain strings (their ONNX names); every op output gets a fresh unique name unless
// one is given. Weights refer to the external-data file (weights.ts); small constants are inline.

import { encodeModel, type AttrValue, type DataTypeName, type NodeSpec, type TensorSpec, type ValueSpec } from './onnx-proto.js';

export type Attr = number | string | number[] | { floats: number[] } | { float: number } | { tensor: TensorSpec };

function toAttr(v: Attr): AttrValue {
  if (typeof v === 'number') return { kind: 'int', v };
  if (typeof v === 'string') return { kind: 'string', v };
  if (Array.isArray(v)) return { kind: 'ints', v };
  if ('floats' in v) return { kind: 'floats', v: v.floats };
  if ('float' in v) return { kind: 'float', v: v.float };
  return { kind: 'tensor', v: v.tensor };
}

/** An initializer stored in the weights file: [offset, offset + length) of `location`. */
export interface ExternalTensor {
  dataType: DataTypeName;
  dims: number[];
  location: string;
  offset: number;
  length: number;
}

export class Graph {
  private readonly nodes: NodeSpec[] = [];
  private readonly inits: TensorSpec[] = [];
  private readonly initNames = new Set<string>();
  private readonly inputs: ValueSpec[] = [];
  private readonly outputs: ValueSpec[] = [];
  private usesMs = false;
  private counter = 0;

  constructor(readonly name: string) {}

  private fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  input(name: string, dataType: DataTypeName, shape: Array<number | string>): string {
    this.inputs.push({ name, dataType, shape });
    return name;
  }

  output(value: string, name: string, dataType: DataTypeName, shape: Array<number | string>): void {
    // A graph output must be produced under its own name: alias through Identity when needed.
    if (value !== name) this.nodes.push({ opType: 'Identity', inputs: [value], outputs: [name], name: this.fresh('out'), attrs: {} });
    this.outputs.push({ name, dataType, shape });
  }

  /** A weight from the external-data file (added once per name). */
  weight(name: string, t: ExternalTensor): string {
    if (!this.initNames.has(name)) {
      this.initNames.add(name);
      this.inits.push({ name, dataType: t.dataType, dims: t.dims, data: { kind: 'external', location: t.location, offset: t.offset, length: t.length } });
    }
    return name;
  }

  /** An inline tensor from raw little-endian bytes (tests and benchmarks; weights go external). */
  inline(name: string, dataType: DataTypeName, dims: number[], bytes: Uint8Array): string {
    this.inits.push({ name, dataType, dims, data: { kind: 'raw', bytes } });
    return name;
  }

  /** An inline constant tensor (small: shapes, axes, scalars). */
  constant(dataType: 'int64' | 'float' | 'int32', dims: number[], values: number[]): string {
    const name = this.fresh('const');
    const bytes =
      dataType === 'int64' ? new Uint8Array(BigInt64Array.from(values.map((v) => BigInt(v))).buffer)
      : dataType === 'int32' ? new Uint8Array(Int32Array.from(values).buffer)
      : new Uint8Array(Float32Array.from(values).buffer);
    this.inits.push({ name, dataType, dims, data: { kind: 'raw', bytes } });
    return name;
  }

  /** 1-D int64 constant (axes, shapes, starts/ends). */
  ints(values: number[]): string {
    return this.constant('int64', [values.length], values);
  }

  /** Scalar float constant. */
  scalar(v: number): string {
    return this.constant('float', [], [v]);
  }

  /** One operator with one output; returns the output's name. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, opts: { domain?: string; out?: string } = {}): string {
    return this.opN(opType, inputs, 1, attrs, opts)[0];
  }

  /** One operator with several outputs. Empty strings in `inputs` mark omitted optional inputs. */
  opN(opType: string, inputs: string[], nOut: number, attrs: Record<string, Attr> = {}, opts: { domain?: string; out?: string } = {}): string[] {
    const outputs = Array.from({ length: nOut }, (_, k) => (opts.out && k === 0 ? opts.out : this.fresh(opType.toLowerCase())));
    const a: Record<string, AttrValue> = {};
    for (const [k, v] of Object.entries(attrs)) a[k] = toAttr(v);
    if (opts.domain === 'com.microsoft') this.usesMs = true;
    this.nodes.push({ opType, domain: opts.domain, inputs, outputs, name: this.fresh(`n_${opType}`), attrs: a });
    return outputs;
  }

  /** The model's default-domain opset (23 for the Attention operator). */
  opset = 21;

  encode(): Uint8Array {
    const opsets = [{ domain: '', version: this.opset }];
    if (this.usesMs) opsets.push({ domain: 'com.microsoft', version: 1 });
    return encodeModel({ graphName: this.name, nodes: this.nodes, initializers: this.inits, inputs: this.inputs, outputs: this.outputs, opsets });
  }
}
