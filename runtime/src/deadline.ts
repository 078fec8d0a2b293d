/** Whether `work` finished before `deadline` (a Date.now() time); it is not cancelled either way. */
export function beforeDeadline(work: Promise<void>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now())); });
  return Promise.race([work.then(() => true), timeout]).finally(() => clearTimeout(timer));
}
