/** The recommended `app.kubernetes.io/*` labels, one place for all constructs. */
export const LABEL_KEYS = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  component: 'app.kubernetes.io/component',
  partOf: 'app.kubernetes.io/part-of',
  managedBy: 'app.kubernetes.io/managed-by',
} as const;

const MODEL_SERVER_COMPONENT = 'model-server';

export interface RecommendedLabels {
  readonly [key: string]: string;
}

export function recommendedLabels(name: string, instance: string, partOf: string): RecommendedLabels {
  return {
    [LABEL_KEYS.name]: name,
    [LABEL_KEYS.instance]: instance,
    [LABEL_KEYS.component]: MODEL_SERVER_COMPONENT,
    [LABEL_KEYS.partOf]: partOf,
    [LABEL_KEYS.managedBy]: 'modelship',
  };
}

/** The labels that select one service's pods: stable across releases, unlike version labels. */
export function selectorLabels(labels: RecommendedLabels): RecommendedLabels {
  return { [LABEL_KEYS.name]: labels[LABEL_KEYS.name], [LABEL_KEYS.instance]: labels[LABEL_KEYS.instance] };
}
