/**
 * Shapes of the server's answers (the REST contract of jupyter-securellm).
 *
 * Every field the server may not serve yet is optional: the UI shows it as
 * "not configured" rather than failing.
 */

export interface IVaultStatus {
  url?: string;
  reachable?: boolean;
  sealed?: boolean | null;
  auth_method?: string;
}

export interface IBudgetDimension {
  period?: string;
  limit?: number | null;
  used?: number | null;
  left?: number | null;
  resets_at?: string | null;
}

export interface IAlert {
  id: string;
  kind?: string;
  severity?: string;
  since?: string;
  message?: string;
}

export interface IStatus {
  broker?: string;
  version?: string;
  user?: string;
  tier?: number | null;
  vault?: IVaultStatus;
  models?: string[];
  budget?: { [dimension: string]: IBudgetDimension } | null;
  alerts?: IAlert[];
}

export interface IFinding {
  rule_id: string;
  fingerprint: string;
  cell: number | null;
  cell_id?: string | null;
  field: string;
  output?: number | null;
  line: number;
  column: number;
  end_line?: number;
  end_column?: number;
}

export interface IRedaction {
  cell: number;
  cell_id?: string | null;
  path: (string | number)[];
  value: string;
}

export interface IScanResult {
  findings: IFinding[];
  save_hook_mode?: string;
  redactions?: IRedaction[];
  not_redactable?: number;
}

/** What the save hook did, as the contents API returns it in `model.securellm`. */
export interface ISaveOutcome {
  action: 'redacted' | 'warned' | 'refused' | string;
  findings: number;
  cells?: number[];
  rules?: string[];
  places?: string[];
}

/** One call of this user in the audit log (never the prompt). */
export interface IRecentCall {
  time?: string;
  model?: string;
  tokens?: number | null;
  status?: string;
}
