// The synthetic warehouse moved to src/demo/warehouse.ts (the demo uses it too); benches import it
// from the build. This re-export keeps older imports of this path working.
export { createSyntheticWarehouse, changeCustomers, CUSTOMER_COLUMNS } from '../../dist/demo/index.js';
