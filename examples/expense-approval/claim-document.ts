// The expense claim document: the plain-text form employees submit, its parser and its writer.
// The parser collects every problem with its line, so a rejection tells the employee all that
// must be fixed in one round; it never guesses a value it cannot read (an amount written as
// "1.234,50" is refused, not reinterpreted), because a misread amount would be paid.

import { z } from 'zod';
import { expenseCategories, isExpenseCategory, type ExpenseCategory } from './policy.js';

/** The task one workflow handles: a claim id and the document submitted for it. */
export const claimTaskInput = z.object({
  claimId: z.string().min(1).describe('The id of the expense claim, e.g. C-0007'),
  document: z.string().min(1).describe('The claim document as submitted, in plain text'),
});
export type ClaimTask = z.infer<typeof claimTaskInput>;

export interface ExpenseClaim {
  claimId: string;
  employee: string;
  category: ExpenseCategory;
  amount: number;
  currency: string;
  /** ISO date (YYYY-MM-DD) the expense was incurred. */
  date: string;
  /** Whether a receipt is attached. */
  receipt: boolean;
  /** IBAN to pay, without spaces. */
  payee: string;
  description: string;
}

export type ParsedClaim = { ok: true; claim: ExpenseClaim } | { ok: false; problems: string[] };

const headerPattern = /^expense claim\s+(\S+)$/i;
const fieldPattern = /^([A-Za-z][A-Za-z ]*?)\s*:\s*(.*)$/;
const claimIdPattern = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;
const emailPattern = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const amountPattern = /^(\d+(?:\.\d{1,2})?)\s+([A-Z]{3})$/;
const datePattern = /^(\d{4})-(\d{2})-(\d{2})$/;
const receiptValues: Readonly<Record<string, boolean>> = { attached: true, yes: true, missing: false, none: false, no: false };

const fieldLabels = {
  employee: 'Employee',
  category: 'Category',
  amount: 'Amount',
  date: 'Date',
  receipt: 'Receipt',
  payee: 'Payee',
  description: 'Description',
} as const;
type FieldName = keyof typeof fieldLabels;

interface FieldLine {
  value: string;
  line: number;
}

export function parseClaimDocument(document: string): ParsedClaim {
  const problems: string[] = [];
  const fields = new Map<FieldName, FieldLine>();
  let header: FieldLine | undefined;

  document.split(/\r?\n/).forEach((raw, index) => {
    const text = raw.trim();
    const line = index + 1;
    if (text === '') return;
    const headerMatch = headerPattern.exec(text);
    if (headerMatch) {
      if (header) problems.push(`line ${line}: a second 'Expense claim' header (the first is on line ${header.line})`);
      else header = { value: headerMatch[1]!, line };
      return;
    }
    const fieldMatch = fieldPattern.exec(text);
    if (!fieldMatch) {
      problems.push(`line ${line}: '${text}' is neither the 'Expense claim <id>' header nor a 'Field: value' line`);
      return;
    }
    const name = fieldNameOf(fieldMatch[1]!);
    if (!name) return; // Extra fields (a project code, a cost centre) are allowed and ignored.
    const earlier = fields.get(name);
    if (earlier) problems.push(`line ${line}: a second '${fieldLabels[name]}' line (the first is on line ${earlier.line})`);
    else fields.set(name, { value: fieldMatch[2]!.trim(), line });
  });

  const required = (name: FieldName): FieldLine | undefined => {
    const field = fields.get(name);
    if (!field) problems.push(`the '${fieldLabels[name]}:' line is missing`);
    else if (field.value === '') problems.push(`line ${field.line} (${fieldLabels[name]}): the value is empty`);
    return field && field.value !== '' ? field : undefined;
  };
  const where = (name: FieldName, field: FieldLine) => `line ${field.line} (${fieldLabels[name]})`;

  if (!header) problems.push(`the 'Expense claim <id>' header line is missing`);
  else if (!claimIdPattern.test(header.value)) problems.push(`line ${header.line}: claim id '${header.value}' may only contain letters, digits and '-'`);

  const employee = required('employee');
  if (employee && !emailPattern.test(employee.value)) {
    problems.push(`${where('employee', employee)}: '${employee.value}' is not an email address`);
  }

  const category = required('category');
  const categoryValue = category?.value.toLowerCase();
  if (category && !isExpenseCategory(categoryValue!)) {
    problems.push(`${where('category', category)}: unknown category '${category.value}' (known: ${expenseCategories.join(', ')})`);
  }

  const amount = required('amount');
  const amountMatch = amount ? amountPattern.exec(amount.value) : null;
  if (amount && !amountMatch) {
    problems.push(`${where('amount', amount)}: '${amount.value}' is not an amount; write digits with a dot and at most two decimals, then the currency code, e.g. '412.50 EUR'`);
  } else if (amountMatch && Number(amountMatch[1]) <= 0) {
    problems.push(`${where('amount', amount!)}: the amount must be more than zero`);
  }

  const date = required('date');
  if (date && !isCalendarDate(date.value)) {
    problems.push(`${where('date', date)}: '${date.value}' is not a valid date in the form YYYY-MM-DD`);
  }

  const receipt = required('receipt');
  const receiptValue = receipt ? receiptValues[receipt.value.toLowerCase()] : undefined;
  if (receipt && receiptValue === undefined) {
    problems.push(`${where('receipt', receipt)}: '${receipt.value}' should be 'attached' or 'missing'`);
  }

  const payee = required('payee');
  const iban = payee?.value.replaceAll(' ', '').toUpperCase();
  if (payee && !isValidIban(iban!)) {
    problems.push(`${where('payee', payee)}: '${payee.value}' is not a valid IBAN (wrong format or check digits)`);
  }

  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    claim: {
      claimId: header!.value,
      employee: employee!.value.toLowerCase(),
      category: categoryValue as ExpenseCategory,
      amount: Number(amountMatch![1]),
      currency: amountMatch![2]!,
      date: date!.value,
      receipt: receiptValue!,
      payee: iban!,
      description: fields.get('description')?.value ?? '',
    },
  };
}

/** Writes a claim as the document an employee would submit; parseClaimDocument reads it back unchanged. */
export function formatClaimDocument(claim: ExpenseClaim): string {
  return [
    `Expense claim ${claim.claimId}`,
    `Employee: ${claim.employee}`,
    `Category: ${claim.category}`,
    `Amount: ${claim.amount.toFixed(2)} ${claim.currency}`,
    `Date: ${claim.date}`,
    `Receipt: ${claim.receipt ? 'attached' : 'missing'}`,
    `Payee: ${claim.payee}`,
    `Description: ${claim.description}`,
  ].join('\n');
}

/** ISO 13616 IBAN check: country, two check digits, then the account; mod 97 of the rearranged number is 1. */
export function isValidIban(value: string): boolean {
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(value)) return false;
  return ibanRemainder(value.slice(4) + value.slice(0, 4)) === 1;
}

/** The two check digits that make `country + digits + account` a valid IBAN. */
export function ibanCheckDigits(country: string, account: string): string {
  return String(98 - ibanRemainder(`${account}${country}00`)).padStart(2, '0');
}

// Letters count as 10..35; the number is reduced piecewise so it never leaves safe integers.
function ibanRemainder(rearranged: string): number {
  let remainder = 0;
  for (const character of rearranged) {
    const digits = /\d/.test(character) ? character : String(character.charCodeAt(0) - 55);
    for (const digit of digits) remainder = (remainder * 10 + Number(digit)) % 97;
  }
  return remainder;
}

function isCalendarDate(value: string): boolean {
  const match = datePattern.exec(value);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

function fieldNameOf(label: string): FieldName | undefined {
  const normalised = label.trim().toLowerCase();
  return (Object.keys(fieldLabels) as FieldName[]).find((name) => name === normalised);
}
