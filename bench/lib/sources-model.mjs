// The model the sources bench reads, shared by the bench and its streaming child.
export const BENCH_MODEL = 'select * from customers';
export const BENCH_COLUMNS = ['user_id', 'email', 'phone', 'first_name', 'country', 'value'];
