/** The self-contained demo (`audience-sync demo`) and the synthetic warehouse it and the benchmarks use. */
export { runDemo, demoConfig, DEMO_SYNC, DEFAULT_DEMO_DIR, DEFAULT_DEMO_ROWS, type DemoOptions, type DemoReport, type SecondRunStory } from './run.js';
export { createSyntheticWarehouse, changeCustomers, CUSTOMER_COLUMNS, type CustomerChanges, type SyntheticWarehouse } from './warehouse.js';
