// Placeholder: replaced by the foundation work (template database with the Directus schema).
export default async function setup(): Promise<void> {}
