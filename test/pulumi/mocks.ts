/**
 * Pulumi's mocks for the test files under test/pulumi: importing this module sets them, so a test file imports it
 * before `modelship/pulumi` (Pulumi's testing guide: mocks first, then the component). Every registered resource
 * is captured with its type, name and inputs.
 */
import * as pulumi from '@pulumi/pulumi';

export interface Registered { readonly type: string; readonly name: string; readonly inputs: any }

export const registered: Registered[] = [];

pulumi.runtime.setMocks({
  newResource: (args) => {
    registered.push({ type: args.type, name: args.name, inputs: args.inputs });
    return { id: `${args.name}-id`, state: args.inputs };
  },
  call: (args) => args.inputs,
}, 'modelship', 'test', false);

const turn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Waits until registrations stop arriving: a resource is registered once its inputs resolve, some turns of the
 * event loop after its constructor ran.
 */
export async function settle(): Promise<void> {
  let count = -1;
  while (count !== registered.length) {
    count = registered.length;
    for (let i = 0; i < 10; i++) await turn();
  }
}

/** The value of an Output, once known. */
export const value = <T>(output: pulumi.Output<T>) => new Promise<T>((resolve) => output.apply((v) => { resolve(v); return v; }));

/**
 * Runs `program` (which may await), waits for its registrations and returns the Kubernetes objects it registered,
 * as plain JSON, sorted by resource name so that programs can be compared whatever order they registered in.
 */
export async function kubernetesObjectsOf(program: () => unknown): Promise<Registered[]> {
  await settle();
  registered.length = 0;
  await program();
  await settle();
  return registered.filter((r) => r.type.startsWith('kubernetes:'))
    .map((r) => ({ type: r.type, name: r.name, inputs: JSON.parse(JSON.stringify(r.inputs)) }))
    .sort((a, b) => a.name.localeCompare(b.name));
}
