"""PyInstaller hook for the small cv2 of packaging/build_opencv.py, used by build.spec instead of the stock one.

That cv2 is a single extension module with no loader package, config scripts or bundled libraries, so there is
nothing to collect beyond the module itself. The stock hook (pyinstaller-hooks-contrib) expects the wheel's loader
package and would look for it in site-packages, mixing the wheel's files into the bundle.
"""

hiddenimports = ["numpy"]  # imported by cv2's C code, invisible to PyInstaller's import scan
