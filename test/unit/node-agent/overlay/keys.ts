// Throwaway public keys for the overlay tests (from the captured dumps).
export const SELF = 'ZGnef1BzP8Lv92I0TLHjUHMmtNWkqjDVrtpmI9Bl9RU=';
export const B = '3TZn6WXlYl2YQGizZ1TvREbHHLwqWnq0nl31NHGi8zU=';
export const C = 'WZ7MlvKmRHGG4MoCeMiunnlCPFJ2U95nrEeMS0tDFQw=';
export const D = 'd59KfsRrchsS4a0JHSxdR7HBqVc3ByUPj5zJAATbi1o=';
