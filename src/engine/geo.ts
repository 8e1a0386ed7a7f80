/** Great-circle distance on a spherical Earth (haversine), in km. */
const EARTH_RADIUS_KM = 6371.0088

/** The longest distance `distanceKm` can return: half a great circle (about 20,015 km). */
export const MAX_DISTANCE_KM = Math.PI * EARTH_RADIUS_KM

const rad = (deg: number): number => (deg * Math.PI) / 180

export function distanceKm (a: { latitude: number, longitude: number }, b: { latitude: number, longitude: number }): number {
  const dLat = rad(b.latitude - a.latitude)
  const dLon = rad(b.longitude - a.longitude)
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.latitude)) * Math.cos(rad(b.latitude)) * Math.sin(dLon / 2) ** 2
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)))
}
