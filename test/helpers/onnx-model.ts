/**
 * A tiny ONNX model, written byte by byte (no onnx package here): enough protobuf to build a graph
 * onnxruntime-node loads. Field numbers from onnx/onnx.proto (ModelProto, GraphProto, NodeProto,
 * AttributeProto, ValueInfoProto, TypeProto, TensorShapeProto, TensorProto, OperatorSetIdProto).
 */

function varint(n: number): number[] {
  const out: number[] = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return out;
}
const key = (field: number, wire: number) => varint((field << 3) | wire);
const int = (field: number, n: number) => [...key(field, 0), ...varint(n)];
const bytes = (field: number, b: number[] | Uint8Array) => [...key(field, 2), ...varint(b.length), ...b];
const str = (field: number, s: string) => bytes(field, [...Buffer.from(s, 'utf8')]);
const msg = (field: number, parts: number[][]) => bytes(field, parts.flat());

type Dim = number | string;
function valueInfo(field: number, name: string, dims: Dim[]): number[] {
  const dimMsgs = dims.map((d) => msg(1, [typeof d === 'number' ? int(1, d) : str(2, d)]));
  const tensorType = msg(1, [int(1, 1 /* FLOAT */), msg(2, dimMsgs)]);
  return msg(field, [str(1, name), msg(2, [tensorType])]);
}

function floatTensor(name: string, values: number[]): number[] {
  const raw = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => raw.writeFloatLE(v, i * 4));
  // dims: a scalar has none
  return msg(5, [int(2, 1 /* FLOAT */), str(8, name), bytes(9, [...raw])]);
}

interface Node {
  op: string;
  inputs: string[];
  output: string;
  ints?: Record<string, number[]>;
  int?: Record<string, number>;
}

function node(n: Node): number[] {
  const attrs = [
    ...Object.entries(n.ints ?? {}).map(([k, v]) => msg(5, [str(1, k), ...v.map((x) => int(8, x)), int(20, 7 /* INTS */)])),
    ...Object.entries(n.int ?? {}).map(([k, v]) => msg(5, [str(1, k), int(3, v), int(20, 2 /* INT */)])),
  ];
  return msg(1, [...n.inputs.map((i) => str(1, i)), str(2, n.output), str(3, `${n.op}_${n.output}`), str(4, n.op), ...attrs]);
}

/**
 * "Probability that the turn is over" = sigmoid(scale · max|x| + bias) over a `[1, samples]` input
 * named `input_values` (or the logit itself when `logit`): loud audio anywhere in the window → high.
 */
export function peakModel(o: { samples: number; scale: number; bias: number; logit?: boolean }): Uint8Array {
  const nodes: Node[] = [
    { op: 'Abs', inputs: ['input_values'], output: 'abs' },
    { op: 'ReduceMax', inputs: ['abs'], output: 'peak', ints: { axes: [1] }, int: { keepdims: 1 } },
    { op: 'Mul', inputs: ['peak', 'scale'], output: 'scaled' },
    { op: 'Add', inputs: ['scaled', 'bias'], output: o.logit ? 'logits' : 'z' },
  ];
  if (!o.logit) nodes.push({ op: 'Sigmoid', inputs: ['z'], output: 'logits' });
  const graph = [
    ...nodes.map(node),
    str(2, 'peak-turn'),
    floatTensor('scale', [o.scale]),
    floatTensor('bias', [o.bias]),
    valueInfo(11, 'input_values', [1, o.samples]),
    valueInfo(12, 'logits', [1, 1]),
  ];
  const model = [int(1, 8 /* ir_version */), str(2, 'patchbay-test'), msg(7, graph), msg(8, [str(1, ''), int(2, 13)])];
  return Uint8Array.from(model.flat());
}
